"""What to simulate: :class:`SimulationConfig`, validated when it is made."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

import msgspec

from sources.simulator.clock import epoch_ms

DEFAULT_START: Final = datetime(2026, 1, 15, 8, 0, tzinfo=UTC)
"""The simulated time of the first event unless a run says otherwise."""

_NOISE_RATES: Final = ("duplicate_rate", "late_rate", "malformed_rate")
_LATE_MAX_S_FLOOR: Final = 0.001
"""A late event lags by whole milliseconds: at least one."""
# ``rate * duration_s`` is nudged up by these before it is cut to whole events: e.g. 0.7/s for
# 10 s gives 7 events, and a duration computed as events / rate that many, despite binary floats.
_RELATIVE_TOLERANCE: Final = 1e-12
_ABSOLUTE_TOLERANCE: Final = 1e-9


class SimulationConfig(msgspec.Struct, frozen=True, kw_only=True):
    """What to simulate. Every field has the ``clickstream simulate`` command's default.

    Attributes:
        customers: number of customers (ids ``C0000001`` upwards).
        rate: valid events per simulated second, across all customers.
        duration_s: simulated seconds; the run holds ``rate * duration_s`` valid events.
        seed: seeds every random choice; same configuration, same bytes.
        start: simulated time of the first event (timezone-aware).
        duplicate_rate: share of valid events re-emitted byte for byte a few to a few hundred
            messages later.
        late_rate: share of valid events emitted after newer events, up to ``late_max_s`` late.
        late_max_s: the most simulated seconds a late event lags behind the newest emitted event.
        malformed_rate: malformed messages per valid event (extra messages, not replacements).
        daily_curve: spread the events over the day as a bank's traffic is (see
            :data:`~sources.simulator.clock.DAILY_CURVE`), ``rate`` being the day's average;
            otherwise evenly.
    """

    customers: int = 1000
    rate: float = 1000.0
    duration_s: float = 60.0
    seed: int = 42
    start: datetime = DEFAULT_START
    duplicate_rate: float = 0.0
    late_rate: float = 0.0
    late_max_s: float = 120.0
    malformed_rate: float = 0.0
    daily_curve: bool = False

    def __post_init__(self) -> None:
        """Reject a configuration that cannot be simulated, naming every bad value."""
        problems: list[str] = []
        if self.customers < 1:
            problems.append(f"customers must be at least 1, not {self.customers}")
        if not self.rate > 0:
            problems.append(f"rate must be above 0 events per second, not {self.rate}")
        if not self.duration_s >= 0:
            problems.append(f"duration must be 0 or more seconds, not {self.duration_s}")
        if self.start.utcoffset() is None:
            problems.append(f"start must carry a UTC offset, not {self.start.isoformat()}")
        for name in _NOISE_RATES:
            value = getattr(self, name)
            if not 0 <= value <= 1:
                problems.append(f"{name} must be between 0 and 1, not {value}")
        if not self.late_max_s >= _LATE_MAX_S_FLOOR:
            problems.append(
                f"late_max_s must be at least {_LATE_MAX_S_FLOOR} seconds, not {self.late_max_s}"
            )
        if problems:
            raise ValueError("invalid simulation: " + "; ".join(problems))

    @property
    def event_count(self) -> int:
        """Number of valid events in the run (late ones included, noise excluded)."""
        return int(self.rate * self.duration_s * (1 + _RELATIVE_TOLERANCE) + _ABSOLUTE_TOLERANCE)

    @property
    def start_ms(self) -> int:
        """The start as milliseconds since the Unix epoch (sub-millisecond part dropped)."""
        return epoch_ms(self.start)
