"""``clickstream campaigns check``'s logic: load a campaigns folder and list every problem.

Loading is :func:`offers.loader.load_dir`, the job's own loader, so a folder that passes here
loads the same in the job. On top of what the decorator and the loader refuse, the check finds
what would only show up while the job runs:

- errors: a rule that cannot be called as ``rule(event, profile, history)`` or is ``async``
  (every match would be a ``rule_error``);
- warnings: a campaign whose ``valid_until`` has passed (it never runs again), a file that
  declares no campaign, an empty folder;
- notes: a campaign whose ``valid_from`` is still ahead.

A template placeholder that is neither a profile field nor given by the rule can only be found
when the rule runs (the decision is then a ``rule_error`` with a ``template: KeyError`` detail).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Literal

from offers.api import Campaign, CampaignError, Trigger
from offers.loader import campaign_files, load_dir

Severity = Literal["error", "warning", "note"]
_UNITS = (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000))


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding of the check."""

    severity: Severity
    message: str
    """Starts with the file it is about (or the folder)."""


@dataclass(frozen=True, slots=True)
class CheckReport:
    """What :func:`check_dir` found."""

    campaigns: tuple[Campaign, ...]
    """The campaigns of the files that load, by file then id."""
    problems: tuple[Problem, ...]

    @property
    def errors(self) -> list[Problem]:
        """The problems that make the check fail."""
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        """The problems worth a look that do not stop a campaign from loading."""
        return [p for p in self.problems if p.severity == "warning"]


def check_dir(directory: Path, today: date) -> CheckReport:
    """Load every campaign file of ``directory`` and check it.

    Args:
        directory: the campaigns folder.
        today: the bank's calendar day, for the validity dates.

    Returns:
        The campaigns that load and every problem, each naming its file.
    """
    try:
        paths = campaign_files(directory)
    except CampaignError as exc:
        return CheckReport((), (Problem("error", str(exc)),))
    loaded, rejected = load_dir(directory)
    problems = [Problem("error", message) for message in rejected]
    if not paths:
        problems.append(Problem("warning", f"{directory}: no campaign files (*.py)"))
    sources = {c.source for c in loaded.campaigns}
    for path in paths:
        named = (f"{path}:", f"{path} (")
        if str(path) not in sources and not any(m.startswith(named) for m in rejected):
            problems.append(Problem("warning", f"{path}: declares no campaign"))
    ordered = sorted(loaded.campaigns, key=lambda c: (c.source, c.id))
    for campaign in ordered:
        problems.extend(campaign_problems(campaign, today))
    # Grouped by file: every message starts with the file's path.
    return CheckReport(tuple(ordered), tuple(sorted(problems, key=lambda p: p.message)))


def campaign_problems(campaign: Campaign, today: date) -> list[Problem]:
    """What the decorator does not refuse but the job would trip over, for one campaign."""
    where = f"{campaign.source}: campaign {campaign.id!r}"
    problems = []
    rule = campaign.rule
    if inspect.iscoroutinefunction(rule):
        problems.append(Problem("error", f"{where}: the rule must be a plain def, not async def"))
    else:
        try:
            signature = inspect.signature(rule)
        except (TypeError, ValueError):
            signature = None
        if signature is not None:
            try:
                signature.bind(None, None, None)
            except TypeError:
                problems.append(
                    Problem(
                        "error",
                        f"{where}: the rule must take (event, profile, history), "
                        f"not {rule.__name__}{signature}",
                    )
                )
    if campaign.valid_until is not None and campaign.valid_until < today:
        problems.append(
            Problem(
                "warning", f"{where}: valid_until {campaign.valid_until} has passed; it never runs"
            )
        )
    if campaign.valid_from is not None and campaign.valid_from > today:
        problems.append(Problem("note", f"{where}: starts on {campaign.valid_from}"))
    return problems


def format_duration(ms: int) -> str:
    """Milliseconds as the largest whole unit, like the decorator takes them: ``45s``, ``30d``."""
    if ms == 0:
        return "0s"
    for unit, size in _UNITS:
        if ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def describe_trigger(trigger: Trigger) -> str:
    """A trigger in one line, e.g. ``transaction channel=atm status=declined``."""
    parts = ["|".join(sorted(trigger.event_type)) if trigger.event_type else "any event"]
    if trigger.channel:
        parts.append("channel=" + "|".join(sorted(trigger.channel)))
    for name in ("screen", "element", "form"):
        value = getattr(trigger, name)
        if value is not None:
            parts.append(f"{name}={value}")
    parts.extend(f"{name}={value}" for name, value in trigger.properties)
    return " ".join(parts)


def describe_triggers(triggers: Iterable[Trigger]) -> str:
    """Every trigger, one per line."""
    return "\n".join(describe_trigger(t) for t in triggers)
