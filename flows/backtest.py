"""``clickstream campaigns backtest``'s logic: run a campaigns folder over archived events.

The events of the archive's hour partitions are fed, in event-time order, to one
:class:`~offers.engine.OffersShard` configured as the job's, except that the trigger age is not
checked (old events are the point). The input's progress is the event time: an offer waiting for
its send time is released once the events have passed it, after the customer's events up to then
(so a cancel event still cancels it and a cancelled offer gives its caps back before the next
match), and whatever still waits at the end is released then. Every decision is counted by
campaign: what each campaign would have sent, held out and suppressed, and why.

What a backtest cannot know: offers sent before the range (their cooldowns and caps), and
profiles as they were then (the profiles are today's).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import msgspec

from offers.check import check_dir
from offers.engine import OffersConfig, OffersResult, OffersShard, ProfileLookup
from offers.loader import CampaignSet
from offers.records import (
    CANCELLED,
    CONTROL_GROUP,
    COOLDOWN,
    DAILY_CAP,
    EXPIRED,
    FREQUENCY_CAP,
    GLOBAL_HOLDOUT,
    LOWER_PRIORITY,
    NO_CONSENT,
    QUIET_HOURS,
    Decision,
    iso_ms,
)
from sources.archive import EventArchive, HourPartition, ReadStats
from state.customer_store import CustomerProfile, ExtractError, parse_extract
from state.moments import NEVER
from state.records import Arrival

SUPPRESSION_REASONS = (
    NO_CONSENT, COOLDOWN, FREQUENCY_CAP, DAILY_CAP, LOWER_PRIORITY, CANCELLED, EXPIRED,
)  # fmt: skip
HOLDOUT_REASONS = (CONTROL_GROUP, GLOBAL_HOLDOUT)
ERROR_EXAMPLES = 3
"""Distinct rule errors kept per campaign, to show what went wrong."""
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class BacktestError(Exception):
    """The backtest cannot run: bad campaigns, no events, no profiles."""


class CampaignOutcomes(msgspec.Struct, kw_only=True):
    """What one campaign (or all of them) would have done."""

    campaign_id: str
    version: int | None = None
    priority: int | None = None
    channel: str | None = None
    matched: int = 0
    """Matches: the rule returned an offer (whatever happened to it afterwards)."""
    sent: int = 0
    """Offers that would have gone out."""
    held_out: dict[str, int] = msgspec.field(
        default_factory=lambda: dict.fromkeys(HOLDOUT_REASONS, 0)
    )
    """Would have been sent, but the customer is in the control group or the global holdout."""
    suppressed: dict[str, int] = msgspec.field(
        default_factory=lambda: dict.fromkeys(SUPPRESSION_REASONS, 0)
    )
    """Matches not sent, by reason, at the match or at the release."""
    quiet_hours: int = 0
    """Matches whose send time was moved to the end of the quiet hours."""
    rule_errors: int = 0
    """Events on which the rule raised, ran too long, or its template could not be filled."""
    rule_error_examples: list[str] = []

    def count(self, decision: Decision) -> None:
        """Add one decision of the engine."""
        outcome, reason = decision.outcome, decision.reason or ""
        if decision.stage == "match":
            if outcome == "rule_error":
                self.rule_errors += 1
                example = decision.detail or reason
                examples = self.rule_error_examples
                if len(examples) < ERROR_EXAMPLES and example not in examples:
                    examples.append(example)
                return
            self.matched += 1
            if outcome == "pending" and reason == QUIET_HOURS:
                self.quiet_hours += 1
        if outcome == "suppressed":
            self.suppressed[reason] = self.suppressed.get(reason, 0) + 1
        elif outcome == "held_out":
            self.held_out[reason] = self.held_out.get(reason, 0) + 1
        elif outcome == "sent":
            self.sent += 1

    def add(self, other: CampaignOutcomes) -> None:
        """Add another campaign's counts (for the totals)."""
        self.matched += other.matched
        self.sent += other.sent
        self.quiet_hours += other.quiet_hours
        self.rule_errors += other.rule_errors
        for mine, theirs in ((self.held_out, other.held_out), (self.suppressed, other.suppressed)):
            for reason, n in theirs.items():
                mine[reason] = mine.get(reason, 0) + n


class BacktestReport(msgspec.Struct, kw_only=True):
    """The result of a backtest: the input read and every campaign's outcomes."""

    campaigns_dir: str
    archive: str
    first_day: str
    """The first ``dt`` partition of the range (UTC day)."""
    last_day: str
    hours: int
    """Hour partitions read."""
    files: int
    rows: int
    """Rows read."""
    customer_events: int
    """Events of known customers, each once: what the campaigns were run on."""
    without_customer: int
    duplicates: int
    first_event: str | None
    last_event: str | None
    campaigns: list[CampaignOutcomes]
    """Highest priority first, as the engine tries them."""
    totals: CampaignOutcomes


def load_campaigns(directory: Path, today: date, *, ignore_dates: bool = False) -> CampaignSet:
    """The campaigns of a folder, refusing a folder with any error ``campaigns check`` reports.

    Args:
        directory: the campaigns folder.
        today: the bank's calendar day (for the check's messages).
        ignore_dates: run every campaign on every day, whatever its ``valid_from`` and
            ``valid_until`` (to try a campaign before it starts).

    Raises:
        BacktestError: the folder has errors, or no campaign.
    """
    report = check_dir(directory, today)
    if report.errors:
        lines = "\n".join(f"error: {p.message}" for p in report.errors)
        raise BacktestError(
            f"{directory} has {len(report.errors)} campaign error(s); fix them first "
            f"(clickstream campaigns check {directory}):\n{lines}"
        )
    if not report.campaigns:
        raise BacktestError(f"{directory} declares no campaign")
    campaigns = report.campaigns
    if ignore_dates:
        campaigns = tuple(replace(c, valid_from=None, valid_until=None) for c in campaigns)
    return CampaignSet(campaigns)


class ExtractProfiles:
    """Profiles from a customer extract file (offline, instead of the store in Redis).

    A customer the extract does not have is unknown: segment ``unknown`` and no consent, as in
    the store.
    """

    def __init__(self, path: Path) -> None:
        """Read and parse the whole extract.

        Raises:
            BacktestError: the file is missing or has no ``customer_id`` column.
        """
        self.profiles: dict[str, CustomerProfile] = {}
        self.bad_rows: list[str] = []
        line = 1
        try:
            for rows in parse_extract(path):
                for parsed in rows:
                    line += 1
                    if isinstance(parsed, str):
                        self.bad_rows.append(f"row {line}: {parsed}")
                    else:
                        self.profiles[parsed.customer_id] = parsed
        except (ExtractError, FileNotFoundError) as exc:
            raise BacktestError(str(exc)) from None

    def __call__(self, customer_ids: Iterable[str]) -> dict[str, CustomerProfile]:
        """The profiles of these customers."""
        profiles = self.profiles
        return {c: profiles.get(c) or CustomerProfile(c) for c in customer_ids}


class _Prefetched:
    """Profiles fetched for an hour of events at once; others from the source, as asked."""

    def __init__(self, source: ProfileLookup) -> None:
        self._source = source
        self._hour: Mapping[str, CustomerProfile] = {}

    def prefetch(self, customer_ids: Iterable[str]) -> None:
        self._hour = self._source(set(customer_ids))

    def __call__(self, customer_ids: Iterable[str]) -> dict[str, CustomerProfile]:
        found: dict[str, CustomerProfile] = {}
        missing = []
        for customer_id in customer_ids:
            profile = self._hour.get(customer_id)
            if profile is None:
                missing.append(customer_id)
            else:
                found[customer_id] = profile
        if missing:
            found.update(self._source(missing))
        return found


class Backtest:
    """One offers shard driven by archived events in event-time order; counts its decisions."""

    def __init__(
        self, campaigns: CampaignSet, profiles: ProfileLookup, config: OffersConfig
    ) -> None:
        """A backtest of ``campaigns`` with the job's engine ``config`` (trigger age off)."""
        self.campaigns = campaigns
        self._profiles = _Prefetched(profiles)
        self._shard = OffersShard(msgspec.structs.replace(config, max_trigger_age_ms=0))
        self.outcomes = {
            c.id: CampaignOutcomes(
                campaign_id=c.id, version=c.version, priority=c.priority, channel=c.channel
            )
            for c in campaigns.campaigns
        }
        self.events = 0
        self._chunk: list[Arrival] = []
        self._in_chunk: set[str] = set()
        self._due: list[int] = []
        """Send times (ms) of the offers waiting, earliest first."""
        self._low_ms = NEVER

    def feed(self, arrivals: list[Arrival]) -> None:
        """Decide on customers' events, given in event-time order (one hour, say)."""
        may_trigger = self.campaigns.may_trigger
        self._profiles.prefetch(
            a.event.customer_id
            for a in arrivals
            if a.event.customer_id is not None and may_trigger(a.event.event_type)
        )
        for arrival in arrivals:
            customer_id = arrival.event.customer_id
            if customer_id is None:
                continue
            event_ms = arrival.event_ms
            # Decide what is due before this event first; a customer's next event waits for
            # the decisions on its previous one (which may hold an offer due before it).
            if (self._due and self._due[0] < event_ms) or customer_id in self._in_chunk:
                self._flush(event_ms - 1)
            self._chunk.append(arrival)
            self._in_chunk.add(customer_id)
            self.events += 1

    def finish(self) -> None:
        """The input ended: decide the last events and release every offer still waiting."""
        low_ms = max(self._low_ms, self._chunk[-1].event_ms if self._chunk else self._low_ms)
        self._flush(low_ms)
        result = self._shard.release(self.campaigns, self._profiles, low_ms, everything=True)
        self._count(result)
        self._due.clear()

    def _flush(self, low_ms: int) -> None:
        """Process the events gathered; the input has passed ``low_ms`` (their time or later)."""
        low_ms = max(low_ms, self._low_ms)
        self._low_ms = low_ms
        result = self._shard.process(self._chunk, self.campaigns, self._profiles, low_ms, low_ms)
        self._chunk = []
        self._in_chunk.clear()
        self._count(result)
        while self._due and self._due[0] <= low_ms:
            heapq.heappop(self._due)

    def _count(self, result: OffersResult) -> None:
        for decision in result.decisions:
            self.outcomes[decision.campaign_id].count(decision)
            if decision.outcome == "pending" and decision.send_at is not None:
                heapq.heappush(self._due, _ms(decision.send_at))

    def totals(self) -> CampaignOutcomes:
        """Every campaign's outcomes added up."""
        total = CampaignOutcomes(campaign_id="total")
        for outcomes in self.outcomes.values():
            total.add(outcomes)
        return total


def run_backtest(
    campaigns: CampaignSet,
    hours: Iterator[list[Arrival]],
    profiles: ProfileLookup,
    config: OffersConfig,
) -> Backtest:
    """Run ``campaigns`` over the events of ``hours`` (each in event-time order, hours ascending).

    Returns:
        The finished backtest, with its outcomes by campaign.
    """
    backtest = Backtest(campaigns, profiles, config)
    for arrivals in hours:
        backtest.feed(arrivals)
    backtest.finish()
    return backtest


def backtest_archive(
    campaigns: CampaignSet,
    archive: EventArchive,
    days: tuple[date, date],
    profiles: ProfileLookup,
    config: OffersConfig,
    *,
    campaigns_dir: Path,
    hours: Sequence[HourPartition] | None = None,
    on_file: Callable[[int], None] | None = None,
) -> BacktestReport:
    """Run ``campaigns`` over the customers' events of the archive's days ``days``.

    Args:
        campaigns: the campaigns (:func:`load_campaigns`).
        archive: the archive to read.
        days: the first and last ``dt`` partition (UTC days, inclusive).
        profiles: the customers' profiles (the store in Redis, or :class:`ExtractProfiles`).
        config: the job's engine configuration (the trigger age is turned off here).
        campaigns_dir: the campaigns folder, for the report.
        hours: the hour partitions of ``days``, when already listed (``archive.hours(*days)``).
        on_file: called with the rows of each object read (progress).

    Raises:
        BacktestError: the archive has no events of known customers in the range.
        ArchiveError: the archive cannot be read.
    """
    first, last = days
    hours = archive.hours(first, last) if hours is None else hours
    stats = ReadStats()
    events = archive.read(hours, customers_only=True, stats=stats, on_file=on_file)
    backtest = run_backtest(campaigns, events, profiles, config)
    if not backtest.events:
        present = archive.days()
        held = f"it holds {present[0]} .. {present[-1]}" if present else "it holds no events"
        found = f"{stats.rows:,} events, none of a known customer" if stats.rows else "no events"
        raise BacktestError(f"{archive.table_location} has {found} from {first} to {last} ({held})")
    return BacktestReport(
        campaigns_dir=str(campaigns_dir),
        archive=archive.location,
        first_day=first.isoformat(),
        last_day=last.isoformat(),
        hours=len(hours),
        files=stats.files,
        rows=stats.rows,
        customer_events=backtest.events,
        without_customer=stats.without_customer,
        duplicates=stats.duplicates,
        first_event=None if stats.first_ms is None else iso_ms(stats.first_ms),
        last_event=None if stats.last_ms is None else iso_ms(stats.last_ms),
        campaigns=[backtest.outcomes[c.id] for c in backtest.campaigns.campaigns],
        totals=backtest.totals(),
    )


def _ms(text: str) -> int:
    moment = datetime.fromisoformat(text)
    return (moment - _EPOCH) // timedelta(milliseconds=1)
