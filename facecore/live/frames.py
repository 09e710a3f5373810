"""The one-slot frame buffer between a live recognizer's frame callback and its worker threads.

A frame put while another still waits replaces it (that one is dropped: the newest frame always
wins, so lag never builds up). Workers start with a frame, take the newest one each time, and end
after ``idle_stop_s`` without frames (the next frame starts new ones) or when the slot is closed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass
class Pending:
    """A frame waiting for a worker: the BGR frame, its number and when it came in."""

    frame_bgr: np.ndarray
    seq: int
    submitted: float


class FrameSlot:
    """The buffer and its ``workers`` threads, each running ``work`` (which calls :meth:`take`).

    :attr:`cond` is the lock of the buffer; the recognizer guards its own state with it too
    (re-entrant, so :meth:`put` may be called while holding it).
    """

    def __init__(self, work: Callable[[], None], *, workers: int, idle_stop_s: float) -> None:
        self.cond = threading.Condition()
        self.workers = workers
        self.idle_stop_s = idle_stop_s
        self.closed = False
        self._work = work
        self._pending: Pending | None = None
        self._threads: list[threading.Thread] = []

    def put(self, item: Pending) -> bool:
        """Offer a frame (replacing one no worker took: then True), starting the workers that are
        missing. Ignored once closed (False)."""
        with self.cond:
            if self.closed:
                return False
            replaced = self._pending is not None
            self._pending = item
            self._threads = [t for t in self._threads if t.is_alive()]
            while len(self._threads) < self.workers:
                worker = threading.Thread(target=self._work, name="facecore-live", daemon=True)
                self._threads.append(worker)
                worker.start()
            self.cond.notify()
            return replaced

    def take(self) -> Pending | None:
        """The newest frame for a worker, waiting for one; None when the worker should end
        (closed, or idle for ``idle_stop_s``)."""
        with self.cond:
            while self._pending is None and not self.closed:
                if not self.cond.wait(timeout=self.idle_stop_s):
                    break  # idle
            item, self._pending = self._pending, None
            if item is None or self.closed:
                if not self.closed and item is None:  # idle: the next frame starts new workers
                    self._threads = [t for t in self._threads if t is not threading.current_thread()]
                return None
            return item

    @property
    def running(self) -> bool:
        """True while a worker thread is alive."""
        return any(t.is_alive() for t in list(self._threads))

    def close(self, timeout: float = 5.0) -> None:
        """Refuse further frames, drop the waiting one, and wait for the workers (after their
        current frames)."""
        with self.cond:
            self.closed = True
            self._pending = None
            self.cond.notify_all()
            threads = list(self._threads)
        for worker in threads:
            if worker is not threading.current_thread():
                worker.join(timeout)


__all__ = ["FrameSlot", "Pending"]
