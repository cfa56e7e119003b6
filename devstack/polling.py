"""Polling until a deadline: the one way the local stack and the tests wait for something.

Built on tenacity (its stop, wait and retry-on-result policies), so no module keeps its own
``while time.monotonic() < deadline`` loop with its own off-by-one at the deadline.
"""

from __future__ import annotations

from collections.abc import Callable

from tenacity import RetryCallState, Retrying, retry_if_result, stop_after_delay, wait_fixed


def _not_done(done: bool) -> bool:
    return not done


def _timed_out(_state: RetryCallState) -> bool:
    return False


def poll_until(check: Callable[[], bool], timeout_s: float, interval_s: float) -> bool:
    """Call ``check`` every ``interval_s`` seconds until it returns True or ``timeout_s`` pass.

    ``check`` runs at least once, and once more after the last pause even if that pause ends
    past the deadline. An exception it raises ends the wait and reaches the caller unchanged.

    Args:
        check: Returns True when what is waited for has happened; it may block (a consumer's
            poll), then ``interval_s`` can be 0.
        timeout_s: Seconds from the first call after which no further call is made.
        interval_s: Seconds to pause between calls.

    Returns:
        True when ``check`` returned True, False when the time ran out first.
    """
    retrying = Retrying(
        stop=stop_after_delay(timeout_s),
        wait=wait_fixed(interval_s),
        retry=retry_if_result(_not_done),
        retry_error_callback=_timed_out,
    )
    return retrying(check)
