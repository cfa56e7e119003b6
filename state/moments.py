"""Event times beyond any event, as named sentinels (milliseconds since the epoch)."""

from __future__ import annotations

NEVER = -(2**62)
"""An event time before any event: no progress yet."""
ENDLESS = 2**62
"""An event time after any event: nothing held open, or everything may close."""
