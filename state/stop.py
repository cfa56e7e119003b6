"""A requested stop of this process's job: set by a signal, read by the sources and steps.

Stopping is not the end of the input. The sources end their partitions at their next batch (so
the input's position is saved where the job stopped), and the steps keep their state instead of
flushing it as at the end of a back-fill (no open session is closed early, no delayed offer is
released early): the job saves its last epoch and exits, and a restart from the recovery store
carries on as if it had never stopped. See :mod:`flows.shutdown` for the signals.
"""

from __future__ import annotations

import threading

_requested = threading.Event()


def request_stop() -> None:
    """Ask the job to stop at the end of its current batches."""
    _requested.set()


def stop_requested() -> bool:
    """Whether a stop was asked for (the input then ends here, not at its end)."""
    return _requested.is_set()
