"""The one error type of the stack manager."""

from __future__ import annotations


class StackError(RuntimeError):
    """A service could not be started, checked or stopped; the message says why and what to do."""
