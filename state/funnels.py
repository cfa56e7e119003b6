"""Funnels: ordered steps a session reaches within a window, the shipped ones and their
parts (configured with ``CLICKSTREAM_FUNNELS``, counted by ``native/src/tally.rs``).
"""

from __future__ import annotations

import msgspec


class FunnelStep(msgspec.Struct, frozen=True):
    """One step: a screen viewed (``screen:NAME``) or an event type (``event:TYPE``)."""

    kind: str
    name: str

    @classmethod
    def parse(cls, text: str) -> FunnelStep:
        """Read ``screen:loan_application`` or ``event:conversion``."""
        kind, _, name = text.partition(":")
        if kind not in ("screen", "event") or not name:
            msg = f"funnel step {text!r} must be 'screen:<screen>' or 'event:<event_type>'"
            raise ValueError(msg)
        return cls(kind, name)


class Funnel(msgspec.Struct, frozen=True):
    """Ordered steps reached within a conversion window from the first step (every occurrence
    of step 1 is tried as a start, and the best is kept; counted by ``native/src/tally.rs``).
    """

    name: str
    steps: tuple[FunnelStep, ...]
    window_ms: int


DEFAULT_FUNNELS = (
    Funnel(
        "loan_application",
        tuple(
            FunnelStep.parse(s)
            for s in (
                "screen:loan_application",
                "event:form_start",
                "event:form_submit",
                "event:conversion",
            )
        ),
        30 * 60_000,
    ),
    Funnel(
        "transfer",
        tuple(FunnelStep.parse(s) for s in ("screen:transfer", "screen:transfer_confirm")),
        15 * 60_000,
    ),
)
