"""A torchrun entry for the tests: :mod:`facecore.train.worker`'s, with hooks set by environment.

* ``FACECORE_TEST_DUMP=DIR``: after training, each rank saves its model's parameters to
  ``DIR/rank<R>.pt`` (to compare the ranks' weights);
* ``FACECORE_TEST_KILL_RANK=R``: rank R kills itself with SIGKILL when validating epoch 2;
* ``FACECORE_TEST_RAISE_RANK=R``: rank R raises a RuntimeError there instead.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import torch

from facecore.train import worker
from facecore.train.loop import Trainer

_evaluate, _finish = Trainer._evaluate, Trainer._finish


def evaluate(self, data):
    rank = str(self.dist.rank)
    if self.state.epoch >= 1:  # validating epoch 2 (state.epoch counts finished epochs)
        if os.environ.get("FACECORE_TEST_KILL_RANK") == rank:
            os.kill(os.getpid(), signal.SIGKILL)
        if os.environ.get("FACECORE_TEST_RAISE_RANK") == rank:
            raise RuntimeError("simulated failure in the test")
    return _evaluate(self, data)


def finish(self, seconds, stopped_early):
    summary = _finish(self, seconds, stopped_early)
    dump = os.environ.get("FACECORE_TEST_DUMP")
    if dump:
        state = {k: v.detach().cpu() for k, v in self.model.state_dict().items()}
        torch.save(state, Path(dump) / f"{self.config.model}-rank{self.dist.rank}.pt")
    return summary


Trainer._evaluate, Trainer._finish = evaluate, finish

if __name__ == "__main__":
    raise SystemExit(worker.main())
