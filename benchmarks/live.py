"""Benchmark the Live page end to end: a fake camera in Chromium, WebRTC to `streamlit run`, and back.

    python benchmarks/live.py [--home DIR] [--fps 30] [--seconds 20] [--models custom_cnn resnet50_scratch]
                              [--precision auto float32 int8] [--gallery NAME] [--gallery-size 1000]

For each model, the newest run in ``--home`` (default: a fresh temporary workspace, where each
model is first trained for one epoch on 3 real LFW people + Unknown, 5 photos each) is chosen on the
Live page; Chromium's fake camera plays a 640x480 ``.y4m`` of Colin Powell's photos at ``--fps``.
After ``--warmup`` seconds the benchmark measures, for ``--seconds``:

* **returned fps**: frames of the annotated video the browser presented (``requestVideoFrameCallback``
  on the player's ``<video>``), per second;
* **callback fps, recognition/s, detection ms, inference ms, dropped, lag**: the page's own stats
  line (:class:`facecore.live.stats.LiveStats`), sampled each second; ``lag`` is how far the frame
  callback
  runs behind the camera's clock, at the start and at the end of the window (a growing lag would
  mean frames queue up).

``--gallery NAME`` measures the page recognising with a gallery of ``--home`` instead (dlib's
face embedder and cosine matching); ``--gallery-size N`` first enrolls N LFW photos into a gallery
``bench-N`` (once; kept in ``--home``).

Widgets are found by the keys the page gives them (``live-run``, ``live-precision``, ...), the player
by its key ``live-webrtc`` (not a stale copy a rerun leaves for a moment), and every choice waits
for the page's reruns to end before the next one. A run that decides Unknown by its embedding's
cosine to the class centroids has no int8 copy: the page runs it in float32 under ``int8`` and
``auto`` and says why, and so do the table's notes.

``resnet50_pretrained`` has exactly the architecture of ``resnet50_scratch`` (the same speed), so
it is not measured separately. Prints a Markdown table (or JSON with ``--json``) and the load average.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.helpers import key_class, press_start, settle, webrtc_player  # noqa: E402 - after sys.path

DEFAULT_ASSETS = ROOT.parent / "shared" / "assets"
CHROMIUM = "/usr/bin/chromium"
PEOPLE = ("Colin_Powell", "Tony_Blair", "Hugo_Chavez")
DEFAULT_MODELS = ["custom_cnn", "resnet50_scratch"]
STATS = re.compile(r"video ([\d.]+) fps \| recognition ([\d.]+)/s \| detection ([\d.]+) ms \| (.*)")
FRAME_COUNTER = """() => {
  const v = document.querySelector('video');
  window.__presented = 0;
  const tick = (_now, meta) => {
    window.__presented = meta.presentedFrames;
    v.requestVideoFrameCallback(tick);
  };
  v.requestVideoFrameCallback(tick);
}"""


def prepare_workspace(home: Path, assets: Path, models: list[str]) -> dict[str, str]:
    """The run to benchmark for each model: the newest in ``home``, else one trained for 1 epoch."""
    os.environ["FACECORE_HOME"] = str(home)
    from facecore.data.dataset import import_dataset, list_datasets
    from facecore.data.transforms import AugmentConfig
    from facecore.live.runs import default_runs
    from facecore.recognize.runs import list_runs
    from facecore.train.config import TrainConfig
    from facecore.train.loop import train

    detectors = home / "detectors"
    detectors.mkdir(parents=True, exist_ok=True)
    yunet = assets / "models" / "face_detection_yunet_2026may.onnx"
    if not any(detectors.glob("face_detection_yunet*.onnx")):
        shutil.copy(yunet, detectors / yunet.name)
    chosen = default_runs([r for r in list_runs() if r.state == "finished"])
    missing = [m for m in models if m not in chosen]
    if missing and "bench-live" not in list_datasets():
        src = home / "downloads" / "bench-live-src"
        lfw = assets / "lfw-deepfunneled"
        for person in PEOPLE:
            (src / person).mkdir(parents=True, exist_ok=True)
            for f in sorted((lfw / person).glob("*.jpg"))[:5]:
                shutil.copy(f, src / person / f.name)
        singles = sorted(p for p in lfw.iterdir() if p.is_dir() and len(list(p.glob("*.jpg"))) == 1)[:5]
        (src / "Unknown").mkdir(exist_ok=True)
        for p in singles:
            shutil.copy(next(p.glob("*.jpg")), src / "Unknown")
        import_dataset(src, "bench-live")
    for model in missing:
        print(f"training {model} for one epoch (tiny) ...", file=sys.stderr, flush=True)
        cfg = TrainConfig.for_model(
            model, "bench-live", epochs=1, batch_size=8, workers=0, augment=AugmentConfig.none()
        )
        chosen[model] = train(cfg)["run"]
    return {m: chosen[m] for m in models}


def prepare_gallery(home: Path, assets: Path, size: int) -> str:
    """Gallery ``bench-<size>`` in ``home``: the first ``size`` LFW photos (people in name order,
    Colin Powell's first photos among them), enrolled once and kept."""
    os.environ["FACECORE_HOME"] = str(home)
    from facecore.gallery.enroll import enroll_source
    from facecore.gallery.store import list_galleries, load_gallery

    name = f"bench-{size}"
    if name in list_galleries() and len(load_gallery(name).files) >= size * 0.95:
        return name
    lfw = assets / "lfw-deepfunneled"
    src = home / "downloads" / f"{name}-src"
    shutil.rmtree(src, ignore_errors=True)
    others = sorted(p.name for p in lfw.iterdir() if p.is_dir() and p.name != "Colin_Powell")
    people = ["Colin_Powell", *others]
    left = size
    for person in people:
        files = sorted((lfw / person).glob("*.jpg"))[: min(left, 40)]
        if not files:
            continue
        (src / person).mkdir(parents=True)
        for f in files:
            shutil.copy(f, src / person / f.name)
        left -= len(files)
        if left <= 0:
            break
    print(f"enrolling {size} LFW photos into gallery {name} ...", file=sys.stderr, flush=True)
    report = enroll_source(name, src, largest=True)
    print(f"{report.total} faces of {len(report.added)} people enrolled", file=sys.stderr, flush=True)
    return name


def camera_video(path: Path, assets: Path, fps: int) -> Path:
    """A 640x480 ``.y4m`` of Colin Powell's photos (each held half a second)."""
    from facecore.data.images import load_rgb
    from facecore.live.video import face_video_frames, write_y4m

    photos = [load_rgb(p) for p in sorted((assets / "lfw-deepfunneled" / PEOPLE[0]).glob("*.jpg"))[:8]]
    write_y4m(path, face_video_frames(photos, frames_per_image=max(1, fps // 2)), fps=fps)
    return path


@contextlib.contextmanager
def streamlit_app(home: Path) -> Iterator[str]:
    """`streamlit run streamlit_app.py` on a free loopback port; yields its URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.headless", "true"]
    cmd += ["--server.port", str(port), "--server.address", "127.0.0.1"]
    env = {**os.environ, "FACECORE_HOME": str(home)}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), urllib.request.urlopen(f"{url}/_stcore/health", timeout=2):
                break
            time.sleep(0.3)
        else:
            raise SystemExit("streamlit did not start")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def parse_stats(line: str) -> dict[str, Any] | None:
    """The numbers of a :meth:`LiveStats.line` string."""
    match = STATS.search(line)
    if not match:
        return None
    out: dict[str, Any] = {
        "callback_fps": float(match[1]),
        "recognition_per_s": float(match[2]),
        "detect_ms": float(match[3]),
        "inference_ms": {},
    }
    for part in match[4].split(" | "):
        name, _, value = part.rpartition(" ")
        if part.startswith("dropped "):
            out["dropped"] = int(part.split()[1])
        elif part.startswith("lag "):
            out["lag_ms"] = float(part.split()[1])
        elif value == "ms":
            model, _, ms = name.rpartition(" ")
            out["inference_ms"][model] = float(ms)
    return out


def stats_line(page) -> str:
    texts = page.get_by_test_id("stCaptionContainer").all_inner_texts()
    return next((t for t in texts if t.startswith("video ")), "")


#: the Live page's Precision options (pages/live.py, PRECISION_LABELS) and the widget keys it uses
LABELS = {
    "auto": "Auto: the faster of float32 and int8 for each model, timed on this machine",
    "float32": "float32",
    "int8": "int8 (CPU)",
}
PLAYER_KEY = "live-webrtc"
TIMED = re.compile(r"(float32|int8) \(float32 [\d.]+ ms, int8 [\d.]+ ms per face\)")


def open_live(page, url: str) -> None:
    """Open the Live page and wait until its first run (and the player's own rerun) is over."""
    page.goto(url)
    page.get_by_test_id("stSidebarNav").get_by_text("Live", exact=True).click()
    page.get_by_role("heading", name="Live", exact=True).wait_for(timeout=60_000)
    settle(page)


def widget(page, key: str):
    """The element container of the page's widget ``key`` (Streamlit's ``st-key-...`` class)."""
    return page.locator(f"div.{key_class(key)}")


def fail(page, what: str) -> None:
    shot = Path(tempfile.gettempdir()) / "facecore-bench-live-settings.png"
    page.screenshot(path=str(shot), full_page=True)
    text = page.get_by_test_id("stMain").inner_text()
    raise SystemExit(f"{what} (screenshot {shot}); the page reads:\n{text}")


def choose_radio(page, key: str, label: str, tries: int = 3) -> None:
    """Set the radio ``key`` to ``label``, pressing again if a rerun lost the press."""
    option = widget(page, key).get_by_role("radio", name=label, exact=True)
    for _ in range(tries):
        if option.is_checked():
            return
        widget(page, key).get_by_text(label, exact=True).click()  # the label: the input is hidden
        settle(page)
    if not option.is_checked():
        fail(page, f"{key} did not switch to {label!r}")


def shown(page, key: str, value: str) -> bool:
    """True when the selectbox ``key`` shows ``value`` (alone, or followed by its description)."""
    text = widget(page, key).get_by_role("combobox").input_value()  # the shown option's label
    return text == value or text.startswith(value + " ")


def choose_option(page, key: str, value: str, tries: int = 3) -> None:
    """Pick ``value`` in the selectbox ``key`` (its option reads ``value`` or ``value  (...)``)."""
    option = page.get_by_role("option", name=re.compile(rf"^{re.escape(value)}(\s|$)"))
    for _ in range(tries):
        if shown(page, key, value):
            return
        widget(page, key).get_by_test_id("stSelectbox").click()
        option.click()
        settle(page)
    if not shown(page, key, value):
        fail(page, f"{key} did not switch to {value!r}")


def open_expander(page, label: str) -> None:
    """Unfold the expander ``label`` (left as it is when already open)."""
    expander = page.get_by_test_id("stExpander").filter(has_text=label)
    if expander.locator("details").get_attribute("open") is None:
        expander.locator("summary").click()
    expander.locator("details[open]").get_by_test_id("stExpanderDetails").and_(
        page.locator(":not([inert])")
    ).wait_for(timeout=10_000)


def precision_note(page) -> tuple[dict[str, str], dict[str, str]]:
    """The page's precision captions: per model, its precision note, and why int8 is not used."""
    notes: dict[str, str] = {}
    problems: dict[str, str] = {}
    for text in page.get_by_test_id("stCaptionContainer").all_inner_texts():
        if text.startswith("Classifying in "):
            for part in text.removeprefix("Classifying in ").removesuffix(".").split("; "):
                name, _, note = part.rpartition(": ")
                notes[name] = note
        elif " runs in float32: " in text:
            name, _, why = text.partition(" runs in float32: ")
            problems[name] = why
    return notes, problems


def check_precision(page, precision: str) -> str:
    """What the settled page says each model classifies in, checked against ``precision``."""
    notes, problems = precision_note(page)

    def fits(name: str, note: str) -> bool:
        if precision == "float32" or (note == "float32" and name in problems):  # int8 not possible
            return note == "float32"
        return note == "int8" if precision == "int8" else bool(TIMED.fullmatch(note))

    if not notes or not all(fits(name, note) for name, note in notes.items()):
        fail(page, f"the page did not switch to {precision} ({notes}, {problems})")
    said = "; ".join(f"{name}: {note}" for name, note in notes.items())
    return said + "".join(f"; {name} cannot run in int8: {why}" for name, why in problems.items())


def measure(
    page,
    url: str,
    run: str,
    warmup: float,
    seconds: float,
    precision: str,
    threads: int | None = None,
    workers: int | None = None,
) -> dict[str, Any]:
    """Open Live, pick ``run`` and the precision, stream the fake camera and measure (see above)."""
    open_live(page, url)
    choose_radio(page, "live-models", "One model")  # with galleries the page starts on "A gallery"
    choose_option(page, "live-run", run)  # the first run builds its recognizer (auto times both)
    open_expander(page, "Performance")
    choose_radio(page, "live-precision", LABELS[precision])  # rebuilds the recognizer if changed
    chosen = check_precision(page, precision)
    settings = set_workers(page, workers, threads)
    return {"run": run, "precision": precision, "chosen": chosen, **stream(page, warmup, seconds, settings)}


def set_workers(page, workers: int | None, threads: int | None) -> dict[str, int]:
    """Set the Performance sliders (None: leave the page's default); return the values in force."""
    settings = {}
    for label, key, value in (
        ("Frames recognised at once", "live-workers", workers),
        ("Torch threads", "live-threads", threads),
    ):
        box = widget(page, key)
        slider = box.get_by_role("slider")
        now = int(box.get_by_test_id("stSliderThumbValue").inner_text())
        settings[label] = value = now if value is None else value  # None: the page's default
        if value != now:
            slider.focus()
            for _ in range(abs(value - now)):
                slider.press("ArrowRight" if value > now else "ArrowLeft")
            settle(page)
        if int(box.get_by_test_id("stSliderThumbValue").inner_text()) != value:
            fail(page, f"{label} did not move to {value}")
    return settings


def measure_gallery(page, url: str, gallery: str, warmup: float, seconds: float, workers: int | None) -> dict:
    """Open Live, recognise with ``gallery``, stream the fake camera and measure."""
    open_live(page, url)
    choose_radio(page, "live-models", "A gallery (enrolled people)")
    choose_option(page, "live-gallery", gallery)
    from facecore.gallery.store import load_gallery  # FACECORE_HOME is --home (prepare_workspace)

    faces = f"matched against {len(load_gallery(gallery).files)} enrolled faces"
    notes, _ = precision_note(page)
    if not any(note.endswith(faces) for note in notes.values()):
        fail(page, f"the page does not classify with gallery {gallery}'s faces ({notes})")
    open_expander(page, "Performance")
    settings = set_workers(page, workers, None)
    chosen = "; ".join(f"{name}: {note}" for name, note in notes.items())
    figures = stream(page, warmup, seconds, settings)
    return {"run": f"gallery:{gallery}", "precision": "-", "chosen": chosen, **figures}


def stream(page, warmup: float, seconds: float, settings: dict[str, int]) -> dict[str, Any]:
    """Press START, wait ``warmup`` s, then sample the page's stats for ``seconds``."""
    settle(page)
    player = webrtc_player(page, PLAYER_KEY)  # the live video's player, not a stale copy
    press_start(player)
    player.locator("video").wait_for(timeout=60_000)
    frame = player.owner.element_handle().content_frame()
    time.sleep(warmup)
    frame.evaluate(FRAME_COUNTER)
    time.sleep(0.5)
    t0, n0 = time.monotonic(), frame.evaluate("window.__presented")
    samples = []
    while time.monotonic() - t0 < seconds:
        parsed = parse_stats(stats_line(page))
        if parsed:
            samples.append(parsed)
        time.sleep(1.0)
    t1, n1 = time.monotonic(), frame.evaluate("window.__presented")
    try:
        player.get_by_role("button", name="STOP").click(timeout=10_000)
    except Exception:  # noqa: BLE001 - the figures are taken; a stuck player only matters for the next page
        page.screenshot(path=str(Path(tempfile.gettempdir()) / "facecore-bench-live-stop.png"))
    if not samples:
        raise SystemExit(f"no stats on the page: {page.get_by_test_id('stMain').inner_text()[:2000]}")
    lags = [s["lag_ms"] for s in samples if "lag_ms" in s]
    third = max(1, len(lags) // 3)
    return {
        "threads": settings.get("Torch threads"),
        "workers": settings["Frames recognised at once"],
        "returned_fps": (n1 - n0) / (t1 - t0),
        "callback_fps": statistics.mean(s["callback_fps"] for s in samples),
        "recognition_per_s": statistics.mean(s["recognition_per_s"] for s in samples),
        "detect_ms": statistics.mean(s["detect_ms"] for s in samples),
        "inference_ms": statistics.mean(v for s in samples for v in s["inference_ms"].values()),
        "lag_start_ms": statistics.mean(lags[:third]) if lags else None,
        "lag_end_ms": statistics.mean(lags[-third:]) if lags else None,
        "dropped": samples[-1].get("dropped"),
        "samples": len(samples),
    }


def table(rows: dict[str, dict[str, Any]], fps: int, load: tuple[float, ...]) -> str:
    lines = [
        f"Camera: 640x480 at {fps} fps (Chromium fake device); {os.cpu_count()} CPU cores; load average "
        f"at the start {load[0]:.1f}, at the end {os.getloadavg()[0]:.1f}.",
        "",
        "| model | returned video fps | callback fps | recognition /s | detection ms | inference ms "
        "| lag start -> end ms | dropped |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    notes = []
    for model, r in rows.items():
        notes.append(f"- {model}: {r['chosen']}")
        lag = f"{r['lag_start_ms']:.0f} -> {r['lag_end_ms']:.0f}" if r["lag_start_ms"] is not None else "n/a"
        lines.append(
            f"| {model} | {r['returned_fps']:.1f} | {r['callback_fps']:.1f} | {r['recognition_per_s']:.1f} "
            f"| {r['detect_ms']:.0f} | {r['inference_ms']:.0f} | {lag} | {r['dropped']} |"
        )
    return "\n".join([*lines, "", *notes])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, help="workspace with runs (default: a temporary one)")
    parser.add_argument("--assets", type=Path, default=DEFAULT_ASSETS)
    parser.add_argument("--models", nargs="+", help="default: custom_cnn resnet50_scratch (or none)")
    parser.add_argument("--gallery", action="append", default=[], metavar="NAME",
                        help="measure the Live page on this gallery of --home; repeatable")
    parser.add_argument("--gallery-size", type=int, metavar="N",
                        help="measure on gallery bench-N: N LFW photos enrolled (made once in --home)")
    parser.add_argument("--fps", type=int, default=30, help="the fake camera's frame rate")
    parser.add_argument("--warmup", type=float, default=8.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument(
        "--precision", nargs="+", choices=list(LABELS), default=["auto", "float32", "int8"],
        help="the Live page's Precision setting, each measured in turn",
    )  # fmt: skip
    parser.add_argument("--threads", type=int, help="the page's torch threads per frame (default: its own)")
    parser.add_argument("--workers", type=int, help="the page's frames recognised at once (default: its own)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"{CHROMIUM} is needed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="facecore-bench-live-") as tmp:
        home = (args.home or Path(tmp) / "home").resolve()
        galleries = list(args.gallery)
        if args.gallery_size:
            galleries.append(prepare_gallery(home, args.assets, args.gallery_size))
        models = args.models if args.models is not None else ([] if galleries else DEFAULT_MODELS)
        runs = prepare_workspace(home, args.assets, models)
        video = camera_video(Path(tmp) / "camera.y4m", args.assets, args.fps)
        flags = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]
        flags += [f"--use-file-for-fake-video-capture={video}", "--autoplay-policy=no-user-gesture-required"]
        results: dict[str, dict[str, Any]] = {}
        with streamlit_app(home) as url, sync_playwright() as pw:
            common = ["--no-sandbox", "--disable-background-networking", "--disable-gpu"]
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=[*common, *flags])
            for model, run in runs.items():
                for precision in args.precision:
                    print(f"measuring {model} ({run}), {precision} ...", file=sys.stderr, flush=True)
                    page = browser.new_page(viewport={"width": 1280, "height": 900})
                    label = f"{model} {precision}" + (f" x{args.threads} threads" if args.threads else "")
                    label += f", {args.workers} workers" if args.workers else ""
                    results[label] = measure(
                        page, url, run, args.warmup, args.seconds, precision, args.threads, args.workers
                    )
                    page.close()
            for gallery in galleries:
                print(f"measuring gallery {gallery} ...", file=sys.stderr, flush=True)
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                label = f"gallery {gallery}" + (f", {args.workers} workers" if args.workers else "")
                results[label] = measure_gallery(page, url, gallery, args.warmup, args.seconds, args.workers)
                page.close()
            browser.close()
    print(json.dumps(results, indent=2) if args.json else table(results, args.fps, load))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
