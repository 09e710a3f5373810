"""What every command module shares: printing JSON, and a progress line on stderr."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from facecore.errors import ConfigError
from facecore.recognize.refs import RecognizerRef

if TYPE_CHECKING:
    from facecore.gallery.store import Gallery


def command(
    sub: argparse._SubParsersAction,
    name: str,
    func: Callable[[argparse.Namespace], int],
    help: str | None = None,
    *,
    json: bool = False,
) -> argparse.ArgumentParser:
    """Add subcommand ``name``, handled by ``func`` (``json``: with a plain ``--json`` flag)."""
    p = sub.add_parser(name, help=help)
    p.set_defaults(func=func)
    if json:
        p.add_argument("--json", action="store_true", help="print the result as JSON")
    return p


def print_json(obj: object) -> None:
    print(json.dumps(obj, indent=2, ensure_ascii=False, default=str))


def progress(prefix: str) -> Callable[[int, int, str], None]:
    """A progress printer for stderr: ``prefix  i/n  message``, one updating line on a tty."""
    tty = sys.stderr.isatty()
    last = [-1.0]

    def show(done: int, total: int, message: str) -> None:
        import time

        now = time.monotonic()
        if tty or done == total or now - last[0] > 2:
            last[0] = now
            end = "\r" if tty and done < total else "\n"
            frac = f"{done}/{total}" if total else ""
            if total > 1_000_000:
                frac = f"{done / 2**20:.0f}/{total / 2**20:.0f} MB"
            print(f"{prefix} {frac} {message[:60]:<60}", end=end, file=sys.stderr, flush=True)

    return show


def recognizers(args: argparse.Namespace) -> list[str]:
    """``--model`` runs, then ``--gallery`` galleries as ``gallery:NAME``; at least one. A gallery
    that is not calibrated is said on stderr (:func:`say_uncalibrated`)."""
    specs = list(args.model) + [str(RecognizerRef.gallery(g)) for g in args.gallery]
    if not specs:
        raise ConfigError("Name at least one trained run (--model RUN) or gallery (--gallery NAME).")
    say_uncalibrated(args.gallery)
    return specs


def say_uncalibrated(galleries: Sequence[str | Gallery]) -> None:
    """One ``note:`` line on stderr for each of ``galleries`` (names, or galleries already
    loaded) that is not calibrated."""
    from facecore.gallery.store import load_gallery

    for g in galleries:
        note = (load_gallery(g) if isinstance(g, str) else g).uncalibrated_note()
        if note:
            print(f"note: {note}", file=sys.stderr)


def refused_without_yes(args: argparse.Namespace, what: str) -> bool:
    """True (and says so on stderr) when a deletion of ``what`` lacks ``--yes``."""
    if args.yes:
        return False
    print(f"Refusing to delete {what} without --yes.", file=sys.stderr)
    return True
