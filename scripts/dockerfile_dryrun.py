"""Dry run of the Dockerfile where Docker cannot run: its pip installs in a fresh venv, then its CMD.

    python scripts/dockerfile_dryrun.py [--work DIR] [--bundle demo.zip] [--keep] [--timeout 300]

1. Creates a fresh virtual environment in a new folder (``--work``, default a temporary one,
   deleted afterwards unless ``--keep``) with this Python (the image's is 3.11).
2. Runs every ``RUN`` command of the Dockerfile that calls ``pip install``, in order, from the
   repository root, with that venv's ``pip``. The one substitution: when the PyTorch CPU index
   (``https://download.pytorch.org/whl/cpu``) cannot be reached from this machine, its
   ``--index-url``/``--extra-index-url`` option is dropped, so pip takes the same pinned versions
   from the indexes pip is configured with here (the project machines keep torch on local disk).
3. Starts the ``CMD`` with the ``ENV`` of the Dockerfile (``FACECORE_HOME`` pointed at a fresh
   folder instead of ``/workspace``), waits until ``/_stcore/health`` answers ``ok`` (what the
   ``HEALTHCHECK`` asks), renders the first page once in that venv and environment (Streamlit's
   AppTest: the imports of torch, OpenCV and dlib, and ``--bundle`` unpacked as
   ``FACECORE_BUNDLE``), and stops the server. Prints the time of each step; exit status 0 when
   both worked.

The Dockerfile parser here is also used by ``tests/hosting/test_dockerfile.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import venv
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"


@dataclass
class Instruction:
    """One Dockerfile instruction: its keyword (upper case) and its arguments as written."""

    keyword: str
    args: str

    def exec_form(self) -> list[str] | None:
        """The JSON array of an exec-form ``CMD``/``ENTRYPOINT``/``HEALTHCHECK CMD``, else None."""
        text = self.args
        if self.keyword == "HEALTHCHECK":
            text = text.split(" CMD ", 1)[1] if " CMD " in text else ""
        text = text.strip()
        if not text.startswith("["):
            return None
        return list(json.loads(text))


@dataclass
class Dockerfile:
    """The instructions of a Dockerfile, continuation lines joined, comments dropped."""

    instructions: list[Instruction] = field(default_factory=list)

    @classmethod
    def read(cls, path: Path) -> Dockerfile:
        out, pending = [], ""
        for raw in path.read_text("utf-8").splitlines():
            line = raw.strip()
            if not pending and (not line or line.startswith("#")):
                continue
            if line.startswith("#"):  # a comment inside a continued instruction
                continue
            if line.endswith("\\"):
                pending += line[:-1].strip() + " "
                continue
            text = (pending + line).strip()
            pending = ""
            keyword, _, args = text.partition(" ")
            out.append(Instruction(keyword.upper(), args.strip()))
        return cls(out)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def one(self, keyword: str) -> Instruction:
        found = self.all(keyword)
        if len(found) != 1:
            raise ValueError(f"expected one {keyword}, found {len(found)}")
        return found[0]

    def env(self) -> dict[str, str]:
        """Every ``ENV key=value`` pair, in order (later ones win)."""
        values: dict[str, str] = {}
        for ins in self.all("ENV"):
            for word in shlex.split(ins.args):
                key, _, value = word.partition("=")
                values[key] = value
        return values

    def pip_installs(self) -> list[list[str]]:
        """The ``pip install`` commands of the ``RUN`` instructions, as argument lists."""
        commands = []
        for ins in self.all("RUN"):
            for part in re.split(r"\s*&&\s*", ins.args):
                words = shlex.split(part)
                if words[:2] == ["pip", "install"]:
                    commands.append(words)
        return commands


def reachable(url: str, timeout: float = 5.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout):
            return True
    except OSError:
        return False


def localise(words: list[str], torch_index_reachable: bool) -> list[str]:
    """``words`` with the PyTorch index option dropped when that index cannot be reached."""
    if torch_index_reachable:
        return words
    out, skip = [], False
    for w in words:
        if skip:
            skip = False
            continue
        if w in ("--index-url", "--extra-index-url", "-i"):
            skip = True
            continue
        if w.startswith(("--index-url=", "--extra-index-url=")):
            continue
        out.append(w)
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.read().strip() == b"ok":
                    return True
        except OSError:
            pass
        time.sleep(1)
    return False


PAGE_CHECK = """
from streamlit.testing.v1 import AppTest
at = AppTest.from_file("streamlit_app.py", default_timeout=300).run()
assert not at.exception, [e.message for e in at.exception]
print("page ok:", " | ".join(m.value[:60] for m in at.markdown[:2]))
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dockerfile", type=Path, default=ROOT / "Dockerfile")
    parser.add_argument("--work", type=Path, default=None, help="a new folder for the venv and workspace")
    parser.add_argument("--bundle", type=Path, default=None, help="serve this bundle (FACECORE_BUNDLE)")
    parser.add_argument("--keep", action="store_true", help="keep the venv (about 6 GB) afterwards")
    parser.add_argument("--timeout", type=float, default=300, help="seconds to wait for health")
    args = parser.parse_args(argv)

    df = Dockerfile.read(args.dockerfile)
    work = args.work or Path(tempfile.mkdtemp(prefix="facecore-dryrun-"))
    work.mkdir(parents=True, exist_ok=args.work is None)
    try:
        return _run(df, work, args)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def _run(df: Dockerfile, work: Path, args: argparse.Namespace) -> int:
    t0 = time.monotonic()
    env_dir = work / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    bin_dir = env_dir / "bin"
    print(f"venv {env_dir} ({time.monotonic() - t0:.0f} s)", flush=True)

    torch_ok = reachable(TORCH_CPU_INDEX + "/torch/")
    if not torch_ok:
        print(f"{TORCH_CPU_INDEX} cannot be reached: its option is dropped (pip's own indexes)", flush=True)
    for words in df.pip_installs():
        cmd = [str(bin_dir / "pip"), *localise(words, torch_ok)[1:]]
        t = time.monotonic()
        print("$ " + shlex.join(cmd), flush=True)
        subprocess.run(cmd, cwd=ROOT, check=True)
        print(f"  ({time.monotonic() - t:.0f} s)", flush=True)

    cmd = df.one("CMD").exec_form()
    if cmd is None:
        raise SystemExit("CMD is not in exec form")
    port = free_port()  # the image's port, 8501, may be taken here; the flag is replaced, not added
    cmd = [f"--server.port={port}" if w.startswith("--server.port=") else w for w in cmd]
    cmd = [w if w != "--server.address=0.0.0.0" else "--server.address=127.0.0.1" for w in cmd]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FACECORE_", "PYTHON", "VIRTUAL_ENV"))}
    env.update(df.env())
    env.update(FACECORE_HOME=str(work / "workspace"), HOME=str(work / "home"))
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    if args.bundle:
        env["FACECORE_BUNDLE"] = str(args.bundle.resolve())
    (work / "workspace").mkdir()
    (work / "home").mkdir()
    print("$ " + shlex.join(cmd), flush=True)
    t = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True)
    healthy, page = False, None
    try:
        healthy = wait_healthy(f"http://127.0.0.1:{port}/_stcore/health", proc, args.timeout)
        print(f"health {'ok' if healthy else 'NOT ok'} after {time.monotonic() - t:.0f} s", flush=True)
        # the health endpoint answers before any page has run: run the first page once, in the
        # same venv and environment (imports torch, OpenCV, dlib; unpacks FACECORE_BUNDLE)
        t = time.monotonic()
        page = subprocess.run([str(bin_dir / "python"), "-c", PAGE_CHECK], cwd=ROOT, env=env)
        verdict = "rendered" if page.returncode == 0 else "FAILED"
        print(f"first page {verdict} in {time.monotonic() - t:.0f} s", flush=True)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
    print(f"dry run {time.monotonic() - t0:.0f} s in all", flush=True)
    return 0 if healthy and page is not None and page.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
