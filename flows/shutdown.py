"""A clean stop on SIGTERM, SIGINT and SIGHUP (a deploy, Ctrl-C, a closed terminal).

The first signal asks the job to stop (:mod:`state.stop`): every input partition ends at its
next batch, the items already read go through every step, the last epoch's state is saved with
the input's position and the sinks' writes finish; then the job exits 0. A restart from the
recovery store goes on from there, nothing lost or counted twice. If that takes longer than the
grace period, or a second signal comes, the job exits at once with status 1; the recovery store
still holds the last complete epoch, so a restart replays from it.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from types import FrameType

from state.stop import request_stop, stop_requested

logger = logging.getLogger("clickstream.shutdown")

SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
EXIT_AT_ONCE = 1


def install(grace_s: float) -> None:
    """Stop cleanly on the first of :data:`SIGNALS`, at once on a second (main thread only)."""

    def on_signal(number: int, frame: FrameType | None) -> None:
        name = signal.Signals(number).name
        if stop_requested():
            logger.warning("%s again: stopping at once, without saving the last epoch", name)
            _exit_now()
        logger.warning(
            "%s received: stopping once the batches being read are processed and saved "
            "(at most %.0f s; a second signal stops at once)",
            name,
            grace_s,
        )
        request_stop()
        threading.Thread(target=_deadline, args=(grace_s,), daemon=True, name="stop").start()

    for number in SIGNALS:
        signal.signal(number, on_signal)


def stopped_cleanly() -> None:
    """Log the end of a requested stop (after the dataflow has returned)."""
    if stop_requested():
        logger.warning("stopped: the last epoch is saved; a restart resumes from it")


def _deadline(grace_s: float) -> None:
    time.sleep(grace_s)
    logger.error("the job did not stop within %.0f s: exiting now", grace_s)
    _exit_now()


def _exit_now() -> None:
    logging.shutdown()
    os._exit(EXIT_AT_ONCE)
