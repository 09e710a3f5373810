"""``python -m facecore.evaluate.bench --run-one-model-json JOB``: one model's figures, measured in
this fresh process and printed as JSON (what :func:`~.measure.run_isolated` starts). The bench
itself is ``python -m facecore bench``."""

from __future__ import annotations

import sys

from facecore.evaluate.bench.measure import CHILD_FLAG, run_child

if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != CHILD_FLAG:
        sys.exit("This entry point only runs run_bench's children; the bench is: python -m facecore bench")
    sys.exit(run_child(sys.argv[2]))
