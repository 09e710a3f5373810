"""``python -m facecore``: the command line."""

from facecore.cli.main import main

if __name__ == "__main__":  # not when a worker process (multiprocessing spawn) imports it
    raise SystemExit(main())
