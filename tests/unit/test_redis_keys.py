"""docs/redis-keys.md documents exactly the key families the job writes (state/redis_keys.py)."""

from __future__ import annotations

import re
from pathlib import Path

from state.redis_keys import FAMILIES, KeyFamily

DOC = (Path(__file__).resolve().parents[2] / "docs" / "redis-keys.md").read_text()
ROW = re.compile(r"^\| (`cs:[^|]*?) \| (hash|sorted set|stream) \|", re.M)


def _documented() -> set[KeyFamily]:
    families = set()
    for keys, kind in ROW.findall(DOC):
        names = re.findall(r"`([^`]+)`", keys)
        first = names[0]
        families.add(KeyFamily(first, kind))
        for relative in names[1:]:
            # `:screen:conversions` beside `cs:day:<day>:screen:sessions`: same base.
            base = first.rsplit(":", relative.count(":"))[0]
            families.add(KeyFamily(base + relative, kind))
    return families


def test_every_family_written_is_documented_and_every_documented_one_written() -> None:
    documented = _documented()
    assert len(documented) > 30
    assert documented == set(FAMILIES)
