"""``python -m facecore``: the command line."""

from facecore.cli import main

raise SystemExit(main())
