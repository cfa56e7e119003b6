"""The job's decode, identity-shard and journeys steps, driven in-process as Bytewax drives them
on one worker: raw messages in, closed sessions and archive rows out (the property tests' path,
and what ``bench/logic.py`` times).

The steps are the dataflow's own (the decode step function, :class:`ShardLogic` with the native
identity core, the routing to journeys shards, :class:`JourneysLogic`); only the scheduling is
this module's. ``restart()`` rebuilds every keyed step from its snapshot bytes, as a resume from
the recovery store would after a crash at an epoch's end.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from flows.routes import decode_step, route_journeys
from flows.shard_steps import (
    JOURNEY_BATCHES,
    SHARD_INPUTS,
    JourneysLogic,
    ShardLogic,
    identity_shard_config,
    journeys_config,
    journeys_logic,
)
from operators.journeys import JourneyBatchResult, SessionRecord
from operators.shard_state import ShardBatchResult, ShardInput
from state.records import Arrival, RawMessage
from state.settings import Settings


def _no_segments(customers: Any) -> dict[str, str]:
    return {}


class StreamedSteps:
    """The identity and journeys steps of the job over one input partition."""

    def __init__(
        self, settings: Settings, positions: tuple[str, ...], *, keep: bool = True
    ) -> None:
        """Steps configured as :func:`flows.dataflow.build_flow` configures them; ``keep`` keeps
        the archived events and closed sessions for a test to read (a bench leaves them)."""
        self._settings = settings
        self._keep = keep
        self._shard_config = identity_shard_config(settings, positions)
        self._journey_config = journeys_config(settings)
        self._decode = decode_step(settings, None, SHARD_INPUTS)
        self._route = route_journeys(JOURNEY_BATCHES)
        self.shards: dict[str, ShardLogic] = {}
        self.journeys: dict[str, JourneysLogic] = {}
        self.sessions: list[SessionRecord] = []
        self.archived: list[Arrival] = []
        self.pipeline: dict[str, int] = {}
        """The pipeline counters of the identity and journeys shards, summed."""
        self.spent: dict[str, float] = defaultdict(float)
        """CPU seconds of this thread by stage (decode, identity shards, journeys)."""

    def feed(self, messages: list[RawMessage]) -> None:
        """One input batch through every step."""
        spent, clock = self.spent, time.thread_time
        started = clock()
        # Dead letters and lag marks are left out.
        decoded = [item for out in self._decode(messages) for item in out.shard_inputs]
        spent["decode"] += clock() - started
        started = clock()
        to_journeys: dict[str, list[Any]] = {}
        for name, shard_input in decoded:
            assert isinstance(shard_input, ShardInput)
            shard = self.shards.get(name)
            if shard is None:
                shard = self.shards[name] = ShardLogic(self._shard_config, None)
            results, _ = shard.on_batch([shard_input])
            self._take(name, results, to_journeys)
        spent["identity shards"] += clock() - started
        started = clock()
        self._journeys(to_journeys, eof=False)
        spent["journeys"] += clock() - started

    def finish(self) -> None:
        """The bounded input ends: every shard and journeys shard flushes."""
        to_journeys: dict[str, list[Any]] = {}
        for name, shard in self.shards.items():
            results, _ = shard.on_eof()
            self._take(name, results, to_journeys)
        self._journeys(to_journeys, eof=True)

    def restart(self) -> None:
        """Every keyed step rebuilt from its snapshot (a resume from the recovery store)."""
        self.shards = {
            name: ShardLogic(self._shard_config, shard.snapshot())
            for name, shard in self.shards.items()
        }
        self.journeys = {
            name: journeys_logic(logic.snapshot(), self._journey_config, _no_segments, False)
            for name, logic in self.journeys.items()
        }

    def _take(self, name: str, results: Any, to_journeys: dict[str, list[Any]]) -> None:
        for result in results:
            assert isinstance(result, ShardBatchResult)
            if self._keep:
                for rows in result.archive_rows.values():
                    self.archived.extend(rows)
            for figure, n in result.pipeline.items():
                self.pipeline[figure] = self.pipeline.get(figure, 0) + n
            for journeys_name, batch in self._route((name, result)):
                to_journeys.setdefault(journeys_name, []).append(batch)

    def _journeys(self, to_journeys: dict[str, list[Any]], *, eof: bool) -> None:
        names = set(to_journeys) | (set(self.journeys) if eof else set())
        for name in sorted(names):
            logic = self.journeys.get(name)
            if logic is None:
                logic = self.journeys[name] = journeys_logic(
                    None, self._journey_config, _no_segments, False
                )
            if name in to_journeys:
                self._outputs(logic.on_batch(to_journeys[name])[0])
            if eof:
                self._outputs(logic.on_eof()[0])

    def _outputs(self, results: Iterable[JourneyBatchResult]) -> None:
        for result in results:
            if self._keep:
                self.sessions.extend(result.sessions)
            for figure, n in result.pipeline.items():
                self.pipeline[figure] = self.pipeline.get(figure, 0) + n
