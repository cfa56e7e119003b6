"""The parts of ``flows/sql/reports/funnel_dropoff.sql`` that depend on the configured funnels.

Funnels are configuration (the shipped ones plus ``CLICKSTREAM_FUNNELS``), so the report's
per-funnel expressions are generated here from the same :class:`~operators.journeys.Funnel`
definitions the job counts with, and filled into the report's placeholders. The SQL uses only
functions Trino and Presto both have (arrays and lambdas), and reads ``event_sessions`` once for
every funnel.
"""

from __future__ import annotations

from collections.abc import Sequence

from state.funnels import Funnel, FunnelStep


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _matches(step: FunnelStep) -> str:
    """The condition under which an event reaches ``step`` (as ``FunnelStep.matches``)."""
    if step.kind == "screen":
        return f"(event_type = 'screen_view' AND screen = {_literal(step.name)})"
    return f"(event_type = {_literal(step.name)})"


def _column(funnel_index: int, step_number: int) -> str:
    """The per-session array saying, for each funnel event, whether it matches the step."""
    return f"f{funnel_index}_s{step_number}"


def _reached(funnel_index: int, funnel: Funnel) -> str:
    """How many steps a session reaches: every event matching step 1 is tried as a start; from
    it, later events are walked in order and each one matching the next step, within the window
    from the start, advances a step; the best start counts (0 when step 1 never occurs).
    """
    advance = " ".join(
        f"WHEN {k} THEN {_column(funnel_index, k + 1)}[j]" for k in range(1, len(funnel.steps))
    )
    next_matches = f"CASE step {advance} ELSE false END" if advance else "false"
    first = _column(funnel_index, 1)
    return (
        f"coalesce(array_max(transform(\n"
        f"            filter(sequence(1, cardinality(times)), i -> {first}[i]),\n"
        f"            i -> reduce(sequence(i, cardinality(times)), 1,\n"
        f"                (step, j) -> IF(j > i AND times[j] - times[i] <= {funnel.window_ms}\n"
        f"                                AND {next_matches}, step + 1, step),\n"
        f"                step -> step))), 0)"
    )


def funnel_placeholders(funnels: Sequence[Funnel]) -> dict[str, str]:
    """The report's ``funnel_*`` placeholders filled in for ``funnels``.

    Args:
        funnels: the funnels the job counts (``Settings.funnel_definitions()``, never empty:
            the shipped funnels are always there).

    Returns:
        SQL text for ``funnel_step_arrays`` (per session and step, which of its funnel events
        match the step), ``funnel_any_step`` (the events any step needs), ``funnel_names`` and
        ``funnel_reached`` (parallel arrays: each funnel's name and the steps a session reaches)
        and ``funnel_steps`` (rows of funnel, step number, step name and the funnel's length).
    """
    arrays: list[str] = []
    any_step: list[str] = []
    reached: list[str] = []
    steps: list[str] = []
    for index, funnel in enumerate(funnels):
        for number, step in enumerate(funnel.steps, start=1):
            condition = _matches(step)
            arrays.append(
                f"array_agg(coalesce({condition}, false) ORDER BY event_time, event_id)"
                f" AS {_column(index, number)}"
            )
            any_step.append(condition)
            steps.append(
                f"({_literal(funnel.name)}, {number}, {_literal(f'{step.kind}:{step.name}')}, "
                f"{len(funnel.steps)})"
            )
        reached.append(_reached(index, funnel))
    return {
        "funnel_step_arrays": ",\n           ".join(arrays),
        "funnel_any_step": "\n       OR ".join(dict.fromkeys(any_step)),
        "funnel_names": f"ARRAY[{', '.join(_literal(f.name) for f in funnels)}]",
        "funnel_reached": "ARRAY[\n        " + ",\n        ".join(reached) + "\n        ]",
        "funnel_steps": ",\n        ".join(steps),
    }
