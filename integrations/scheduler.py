"""A single timer thread that runs callbacks at deadlines.

Both the DNS server and the NFQUEUE daemon must hold many replies/verdicts at once without one
slow item delaying another (a slow AAAA must never hold up the A). One heap and one thread is
cheaper and more precise than a threading.Timer per packet.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from typing import Callable

__all__ = ["Scheduler"]


class Scheduler:
    """Run callables at absolute ``time.monotonic()`` deadlines on one daemon thread."""

    def __init__(self, name: str = "scheduler") -> None:
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        # The counter breaks ties so the heap never compares callables.
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def call_later(self, delay: float, func: Callable[[], None]) -> None:
        """Run ``func`` after ``delay`` seconds (at once when ``delay <= 0``)."""
        deadline = time.monotonic() + max(0.0, delay)
        with self._cond:
            heapq.heappush(self._heap, (deadline, next(self._seq), func))
            self._cond.notify()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()
        self._thread.join(timeout=1.0)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopped:
                    if self._heap:
                        wait = self._heap[0][0] - time.monotonic()
                        if wait <= 0:
                            break
                        self._cond.wait(wait)
                    else:
                        self._cond.wait()
                if self._stopped:
                    return
                _, _, func = heapq.heappop(self._heap)
            # Run outside the lock so a callback may schedule more work.
            try:
                func()
            except Exception as exc:  # a failed send must not kill the timer thread
                print(f"scheduler: callback failed: {exc!r}", flush=True)
