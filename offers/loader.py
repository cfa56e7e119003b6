"""Loading campaign files: validation, the trigger index, and reloading changed files live.

Every ``*.py`` file directly in the campaigns folder (names starting with ``_`` are skipped) is
imported on its own; every :class:`~offers.api.Campaign` at its top level is a campaign. A file
that does not import, declares a bad campaign or reuses another file's campaign id is rejected
as a whole with a message naming the file and the problem; while the job runs, the file's
previous campaigns keep running.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import sys
import time
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from offers.api import Campaign, CampaignError, Trigger
from state.contract import Event

log = logging.getLogger(__name__)


class CampaignSet:
    """Loaded campaigns with an index from an event's values to the campaigns it may trigger.

    Each trigger is filed under its event types and its most selective value (a screen, an
    element, a form or a property), so an event is checked only against the few triggers filed
    under its own values.
    """

    def __init__(self, campaigns: Iterable[Campaign]) -> None:
        """Index ``campaigns`` (ids must be unique)."""
        ordered = sorted(campaigns, key=lambda c: (-c.priority, c.id))
        self.campaigns: tuple[Campaign, ...] = tuple(ordered)
        self.by_id: dict[str, Campaign] = {c.id: c for c in ordered}
        self._rank = {c.id: n for n, c in enumerate(ordered)}
        index: dict[tuple[str | None, str, Any], list[tuple[Trigger, Campaign]]] = {}
        properties: dict[str | None, set[str]] = {}
        for found in ordered:
            for trigger in found.triggers:
                attribute, value = _selective(trigger)
                if attribute.startswith("p:"):
                    for event_type in trigger.event_type or (None,):
                        properties.setdefault(event_type, set()).add(attribute[2:])
                for event_type in trigger.event_type or (None,):
                    index.setdefault((event_type, attribute, value), []).append((trigger, found))
        self._index = index
        self._properties = {k: tuple(sorted(v)) for k, v in properties.items()}
        self._types = {key[0] for key in index}
        self._attributes: dict[str | None, tuple[str, ...]] = {}
        for event_type, attribute, _ in index:
            if not attribute.startswith("p:"):
                known = self._attributes.get(event_type, ())
                if attribute not in known:
                    self._attributes[event_type] = (*known, attribute)

    def __len__(self) -> int:
        """How many campaigns are loaded."""
        return len(self.campaigns)

    def may_trigger(self, event_type: str) -> bool:
        """True when some campaign looks at this event type at all (a cheap first filter)."""
        return event_type in self._types or None in self._types

    def candidates(self, event: Event) -> list[Campaign]:
        """Campaigns with a trigger matching ``event``, highest priority first."""
        index = self._index
        found: dict[str, Campaign] = {}
        for event_type in (event.event_type, None):
            if event_type not in self._types:
                continue
            keys: list[tuple[str | None, str, Any]] = [
                (event_type, attribute, getattr(event, attribute) if attribute else None)
                for attribute in self._attributes.get(event_type, ())
            ]
            props = event.properties
            for name in self._properties.get(event_type, ()):
                if name in props:
                    keys.append((event_type, f"p:{name}", props[name]))
            for key in keys:
                for trigger, owner in index.get(key, ()):
                    if owner.id not in found and trigger.matches(event):
                        found[owner.id] = owner
        if len(found) < 2:
            return list(found.values())
        rank = self._rank
        return sorted(found.values(), key=lambda c: rank[c.id])

    @property
    def fingerprint(self) -> str:
        """Ids and versions, to log what is running."""
        return ", ".join(f"{c.id}@{c.version}" for c in sorted(self.campaigns, key=lambda c: c.id))


def _selective(trigger: Trigger) -> tuple[str, Any]:
    """The value a trigger is filed under: its screen, element or form, else a property."""
    for attribute in ("element", "screen", "form"):
        value = getattr(trigger, attribute)
        if value is not None:
            return attribute, value
    if trigger.properties:
        name, value = trigger.properties[0]
        return f"p:{name}", value
    return "", None


def load_file(path: Path) -> list[Campaign]:
    """Import one campaign file and return its campaigns.

    Raises:
        CampaignError: When the file does not import or declares a bad campaign; the message
            names the file (and the line, for an exception).
    """
    digest = hashlib.blake2b(str(path.resolve()).encode(), digest_size=6).hexdigest()
    name = f"_campaigns_{digest}_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise CampaignError(f"{path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        # Compiled from the bytes on disk: the bytecode cache trusts whole-second timestamps
        # and would run the old rule after a same-size edit within a second.
        source = path.read_bytes()
        exec(compile(source, str(path), "exec"), module.__dict__)
    except CampaignError as exc:
        raise CampaignError(f"{path}: {exc}") from None
    except BaseException as exc:  # any failure of user code rejects the file
        if isinstance(exc, KeyboardInterrupt):
            raise
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == str(path)]
        where = f" (line {frames[-1].lineno})" if frames else ""
        raise CampaignError(f"{path}{where}: {type(exc).__name__}: {exc}") from None
    finally:
        sys.modules.pop(name, None)
    found = [value for value in vars(module).values() if isinstance(value, Campaign)]
    seen: set[str] = set()
    result = []
    for found_campaign in found:
        if found_campaign.id in seen:
            raise CampaignError(f"{path}: campaign id {found_campaign.id!r} is declared twice")
        seen.add(found_campaign.id)
        result.append(_with_source(found_campaign, path))
    return result


def _with_source(found: Campaign, path: Path) -> Campaign:
    from dataclasses import replace

    return replace(found, source=str(path))


def campaign_files(directory: Path) -> list[Path]:
    """The campaign files of a folder, in name order.

    Raises:
        CampaignError: When the folder does not exist.
    """
    if not directory.is_dir():
        raise CampaignError(f"{directory}: campaigns folder not found")
    return sorted(p for p in directory.glob("*.py") if not p.name.startswith("_"))


def load_dir(directory: Path) -> tuple[CampaignSet, list[str]]:
    """Load every campaign file of a folder.

    Returns:
        The campaigns of the good files, and one message per rejected file.
    """
    problems: list[str] = []
    owners: dict[str, Path] = {}
    loaded: list[Campaign] = []
    for path in campaign_files(directory):
        try:
            campaigns = load_file(path)
        except CampaignError as exc:
            problems.append(str(exc))
            continue
        clash = [c.id for c in campaigns if c.id in owners]
        if clash:
            problems.append(
                f"{path}: campaign id {clash[0]!r} is already declared in {owners[clash[0]]}"
            )
            continue
        for item in campaigns:
            owners[item.id] = path
        loaded.extend(campaigns)
    return CampaignSet(loaded), problems


class CampaignRegistry:
    """The running job's campaigns, re-read when a file changes (at most every ``reload_s``).

    A file that fails to load is logged and its previous campaigns keep running; a deleted file's
    campaigns stop. One registry serves every shard of a process.
    """

    def __init__(
        self,
        directory: Path,
        reload_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Load the folder now (a file that fails is logged, as on a reload)."""
        self.directory = directory
        self._reload_s = reload_s
        self._clock = clock
        self._files: dict[Path, tuple[str, list[Campaign]]] = {}
        self._checked_at = -float("inf")
        self._rejected: dict[Path, tuple[str, str]] = {}
        self._set = CampaignSet(())
        self.current()

    @property
    def problems(self) -> dict[Path, str]:
        """The current error of each rejected file."""
        return {path: message for path, (_, message) in self._rejected.items()}

    def current(self) -> CampaignSet:
        """The campaigns to use now, after re-reading changed files when a check is due."""
        now = self._clock()
        if now - self._checked_at >= self._reload_s:
            self._checked_at = now
            self._rescan()
        return self._set

    def _rescan(self) -> None:
        try:
            paths = campaign_files(self.directory)
        except CampaignError as exc:
            log.error("campaigns: %s; keeping the %d running campaigns", exc, len(self._set))
            return
        changed = False
        for gone in set(self._files) - set(paths):
            log.warning("campaigns: %s was removed; its campaigns stop", gone)
            del self._files[gone]
            self._rejected.pop(gone, None)
            changed = True
        for path in paths:
            try:
                stamp = hashlib.blake2b(path.read_bytes(), digest_size=16).hexdigest()
            except OSError:
                continue
            previous = self._files.get(path)
            if previous is not None and previous[0] == stamp:
                continue
            rejected = self._rejected.get(path)
            if rejected is not None and rejected[0] == stamp:
                continue
            changed |= self._load(path, stamp)
        if changed:
            self._set = CampaignSet(c for _, campaigns in self._files.values() for c in campaigns)
            log.info("campaigns: running %s", self._set.fingerprint or "none")

    def _load(self, path: Path, stamp: str) -> bool:
        try:
            campaigns = load_file(path)
            others = {c.id: p for p, (_, cs) in self._files.items() if p != path for c in cs}
            for item in campaigns:
                if item.id in others:
                    msg = f"{path}: campaign id {item.id!r} is already in {others[item.id]}"
                    raise CampaignError(msg)
        except CampaignError as exc:
            kept = len(self._files.get(path, ("", []))[1])
            log.error("campaigns: rejected %s; keeping its %d previous campaigns", exc, kept)
            self._rejected[path] = (stamp, str(exc))
            return False
        self._rejected.pop(path, None)
        self._files[path] = (stamp, campaigns)
        return True
