"""The simulator's cheap random draws: a weighted choice and an int below a bound.

Every draw takes its generator as an argument: the simulator keeps one seeded generator for the
population, one for the traffic and one for the noise, and never touches global random state.
"""

from __future__ import annotations

import random
from bisect import bisect
from itertools import accumulate
from typing import Generic, TypeVar

T = TypeVar("T")


class Mix(Generic[T]):
    """A weighted choice, drawn with one ``random()`` call."""

    __slots__ = ("_bounds", "_options")

    def __init__(self, *weighted: tuple[T, float]) -> None:
        """A choice among ``(option, weight)`` pairs; weights need not add up to anything."""
        self._options = tuple(option for option, _ in weighted)
        self._bounds = tuple(accumulate(weight for _, weight in weighted))

    def pick(self, rng: random.Random) -> T:
        """One option, drawn with its weight's share of the chance.

        Args:
            rng: the generator to draw from (one ``random()`` call).

        Returns:
            The option drawn.
        """
        index = bisect(self._bounds, rng.random() * self._bounds[-1])
        return self._options[min(index, len(self._options) - 1)]


def below(rng: random.Random, bound: int) -> int:
    """A random int in ``[0, bound)``: ``randrange`` costs ten times as much.

    Args:
        rng: the generator to draw from (one ``random()`` call).
        bound: the exclusive upper bound.

    Returns:
        An int from 0 to ``bound - 1``.
    """
    return int(rng.random() * bound)
