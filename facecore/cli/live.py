"""``python -m facecore`` live (a video file or camera, as the Live page)."""

from __future__ import annotations

import argparse
import sys

from facecore.cli.common import command, print_json, recognizers
from facecore.live.config import DEFAULT_WORKERS, LiveConfig, setting


def cmd_live(args: argparse.Namespace) -> int:
    from facecore.errors import ConfigError, EnrollmentError
    from facecore.live.recognizer import LiveRecognizer
    from facecore.live.video_loop import run_video

    config = LiveConfig(
        detector=args.detector,
        threshold=args.threshold,
        max_faces=args.max_faces,
        detect_side=args.detect_side,
        threads=args.threads,
        device=args.device,
        precision="int8" if args.int8 else args.precision,
        workers=args.workers,
    )
    if args.enroll and len(args.gallery) != 1:
        raise ConfigError("--enroll PERSON adds the person in the video to a gallery: give one --gallery.")
    with LiveRecognizer(recognizers(args), config) as recognizer:
        for name, problem in recognizer.int8_problems.items():
            print(f"note: {name} stays in float32: {problem}", file=sys.stderr)
        for name, note in recognizer.precision_notes().items():
            print(f"{name}: {note}", file=sys.stderr)
        add_me = recognizer.start_add_me(args.gallery[0], args.enroll) if args.enroll else None
        summary = run_video(
            args.source,
            recognizer,
            out=args.out,
            every_frame=args.every_frame,
            max_seconds=args.seconds,
            report=(lambda _line: None) if args.json else print,
        )
        if add_me is not None:
            progress = add_me.wait(timeout=120)
            summary["add_me"] = progress.to_dict()
            if not args.json:
                print(progress.line())
            if progress.state != "done":
                if args.json:
                    print_json(summary)
                raise EnrollmentError(
                    progress.message
                    or f"The video ended with {progress.captured}/{progress.count} faces of {progress.person}"
                    " captured; nothing was enrolled. Use a longer video (or a camera), facing it alone."
                )
    if args.json:
        print_json(summary)
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add this group's commands to the top-level parser (bounds, choices and help of the
    recognizer's settings come from :class:`~facecore.live.config.LiveConfig`)."""
    p = command(sub, "live", cmd_live, "recognise faces in a video file or camera as the Live page does")
    p.add_argument(
        "source", metavar="VIDEO_OR_CAMERA", help="a video file (.mp4, .avi, .y4m ...) or a camera index"
    )
    p.add_argument(
        "--model", action="append", default=[], metavar="RUN", help="run name, folder or .pt; repeatable"
    )
    p.add_argument("--gallery", action="append", default=[], metavar="NAME",
                   help="a gallery to recognise with (beside or instead of runs); repeatable")
    p.add_argument("--threshold", type=float, help=setting("threshold").help)
    detector = setting("detector")
    p.add_argument("--detector", default=detector.default, choices=list(detector.choices))
    for name in ("detect_side", "max_faces", "threads"):
        spec = setting(name)
        p.add_argument(f"--{name.replace('_', '-')}", type=int, default=spec.default, help=spec.help)
    p.add_argument(
        "--workers",
        type=int,
        default=DEFAULT_WORKERS,
        help=setting("workers").help,
    )
    p.add_argument("--precision", default="auto", choices=list(setting("precision").choices),
                   help=setting("precision").help)
    p.add_argument("--int8", action="store_true", help="the same as --precision int8")
    p.add_argument("--out", metavar="FILE", help="write the annotated video (.mp4, .avi, .mkv or .y4m)")
    p.add_argument(
        "--every-frame",
        action="store_true",
        help="recognise every frame before the next (offline); default: paced as live, newest frame wins",
    )
    p.add_argument("--seconds", type=float, help="stop after this many seconds")
    p.add_argument(
        "--enroll",
        metavar="PERSON",
        help="add the person in the video to the --gallery as PERSON (the Live page's Add me): 5 faces "
        "at least 0.3 s apart, then the video goes on with the gallery reloaded",
    )
    p.add_argument("--device", default=setting("device").default, help=setting("device").help)
    p.add_argument(
        "--json", action="store_true", help="print the summary as JSON instead of a line per second"
    )
