"""The five dashboards: live overview, journeys, cross-sections, offers, pipeline health.

Every panel reads one key family of docs/redis-keys.md, named through :mod:`state.redis_keys`
with the dashboard's variables: ``prefix`` (the job's ``CLICKSTREAM_REDIS_PREFIX``), ``day`` (the
days with figures, newest first, from ``<prefix>:days``) and ``month``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from grafana_foundation_sdk.builders import dashboard
from grafana_foundation_sdk.models.dashboard import (
    DashboardCursorSync,
    VariableRefresh,
    VariableSort,
)

from grafana import panels as p
from grafana.redis_query import DATASOURCE
from state import redis_keys as rk
from state.contract import EVENT_TYPES
from state.funnels import Funnel

REFRESH = "10s"
TAGS = ["bank-clickstream"]


def _variables(*, month: bool = False, campaign: bool = False) -> list[Any]:
    days = f"ZRANGE {p.PREFIX}:days 0 -1"
    variables: list[Any] = [
        dashboard.TextBoxVariable("prefix")
        .label("Redis prefix")
        .description("The job's CLICKSTREAM_REDIS_PREFIX.")
        .default_value("cs"),
        dashboard.QueryVariable("day")
        .label("Day (UTC)")
        .description("A day with figures, newest first.")
        .datasource(DATASOURCE)
        .query(days)
        .sort(VariableSort.ALPHABETICAL_DESC)
        .refresh(VariableRefresh.ON_DASHBOARD_LOAD),
    ]
    if month:
        variables.append(
            dashboard.QueryVariable("month")
            .label("Month (UTC)")
            .datasource(DATASOURCE)
            .query(days)
            .regex(r"/^(\d{4}-\d{2})/")
            .sort(VariableSort.ALPHABETICAL_DESC)
            .refresh(VariableRefresh.ON_DASHBOARD_LOAD)
        )
    if campaign:
        variables.append(
            dashboard.QueryVariable("campaign")
            .label("Campaign")
            .description("Campaigns whose rules matched on the day.")
            .datasource(DATASOURCE)
            .query(f"HKEYS {p.offers(rk.OFFERS_MATCHED)}")
            .sort(VariableSort.ALPHABETICAL_ASC)
            .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        )
    return variables


def _board(uid: str, title: str, description: str, variables: list[Any]) -> dashboard.Dashboard:
    board = (
        dashboard.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(TAGS)
        .refresh(REFRESH)
        .time("now-24h", "now")
        .timezone("utc")
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .editable()
    )
    for variable in variables:
        board = board.with_variable(variable)
    return board


def _row(board: dashboard.Dashboard, title: str, panels: Sequence[Any]) -> dashboard.Dashboard:
    board = board.with_row(dashboard.Row(title))
    for panel in panels:
        board = board.with_panel(panel)
    return board


def overview() -> dashboard.Dashboard:
    """What is happening now: traffic, customers, sessions and what goes wrong."""
    series = rk.series_key(p.PREFIX, rk.EVENTS_BY_TYPE)
    journeys = rk.series_key(p.PREFIX, rk.JOURNEYS)
    pipeline = rk.pipeline_key(p.PREFIX)
    board = _board("bc-overview", "Bank clickstream: live overview",
                   "Events, customers and sessions as they happen (by event time, UTC).",
                   _variables())  # fmt: skip
    board = _row(board, "Traffic", [
        p.per_minute("Events per minute by type", "Valid unique events per closed minute, by "
                     "event type: a drop means a channel or an app stopped sending.", series,
                     [*EVENT_TYPES, "total"], width=16),
        p.pie("Events today by channel", "Today's valid events by channel (mobile, web, ATM, "
              "branch, core).", p.day(rk.by_dimension("channel", "events"))),
    ])  # fmt: skip
    board = _row(board, "Customers", [
        p.per_minute("Active customers, sessions started and converted per minute",
                     "Distinct logged-in customers active in each minute; sessions by the minute "
                     "they started, shown once they have closed.", journeys, width=12),
        p.stat_sum("Logins", "Logins in the time range.", series, "login"),
        p.stat_sum("Conversions", "Conversion events in the time range.", series, "conversion"),
        p.stat_sum("Active customers now", "Customers active in the latest closed minute.",
                   journeys, "active_customers", calc="lastNotNull"),
    ])  # fmt: skip
    return _row(board, "What goes wrong", [
        p.stat_sum("Errors", "Error events in the time range.", series, "error"),
        p.stat_field("Dead letters", "Messages the job could not accept since it started its "
                     "recovery store: each is on the dead-letter topic with its reason.",
                     pipeline, "dead_letters", warn_above=1),
        p.stat_field("Late events", "Events older than the watermark: archived, counted here, "
                     "and in no minute figure.", pipeline, "late", warn_above=1),
        p.stat_field("Duplicates", "Repeated event ids dropped within the dedupe window.",
                     pipeline, "duplicates"),
        p.ranking("Errors by code", "Today's error events by error code (else the screen).",
                  p.day(rk.TOP_ERRORS), "error", "errors", width=8),
    ])  # fmt: skip


def journeys(funnels: Sequence[Funnel]) -> dashboard.Dashboard:
    """Where customers go and where they stop, for the chosen day."""
    board = _board("bc-journeys", "Bank clickstream: journeys",
                   "Sessions of the chosen day (by their first event, UTC): paths, exits, "
                   "forms, funnels and friction.", _variables())  # fmt: skip
    board = _row(board, "Paths", [
        p.sankey("Screen transitions", "The 50 most frequent moves from one screen to another "
                 "within sessions; the width is the number of transitions.",
                 p.day(rk.TRANSITIONS), "transitions"),
    ])  # fmt: skip
    board = _row(board, "Where customers stop", [
        p.ranking("Exit screens", "The last screen viewed in each session: where customers "
                  "leave.", p.day(rk.TOP_EXIT_SCREENS), "screen", "sessions"),
        p.ranking("Abandoned forms", "Forms started and not submitted in the same session.",
                  p.day(rk.TOP_ABANDONED_FORMS), "form", "abandoned"),
        p.ranking("Top screens", "Screen views of the day.", p.day(rk.TOP_SCREENS), "screen",
                  "views"),
    ])  # fmt: skip
    board = _row(board, "Funnels", [
        p.hash_bars(f"Funnel: {f.name}", f"Sessions reaching each step of '{f.name}' in order "
                    f"within {f.window_ms // 60_000} min of step 1 "
                    f"({', '.join(s.name for s in f.steps)}); the drop between bars is the "
                    "drop-off.", p.day(rk.funnel(f.name)), "step", "sessions", by_label=True)
        for f in funnels
    ])  # fmt: skip
    return _row(board, "Friction and conversion", [
        p.ranking("Rage clicks", "Bursts of more than 3 clicks on the same screen and element "
                  "within 1 s (screen|element).", p.day(rk.TOP_RAGE_CLICKS), "button", "bursts"),
        p.hash_table("Screen conversion", "Of the sessions that viewed a screen, the share that "
                     "converted.", p.day(f"screen:{rk.CONVERSION_RATE}"), "screen",
                     "conversion", unit="percentunit"),
        p.hash_table("Form completion", "Of the sessions that started a form, the share that "
                     "submitted it.", p.day(f"form:{rk.COMPLETION_RATE}"), "form",
                     "completion", unit="percentunit"),
    ])  # fmt: skip


def cross_sections() -> dashboard.Dashboard:
    """Who: OS, app version, app, channel and segment of the day, and the month by day."""
    board = _board("bc-cross-sections", "Bank clickstream: cross-sections",
                   "The day's events and sessions by OS, app version, app, channel and "
                   "customer segment; the month by day.", _variables(month=True))  # fmt: skip
    for dimension, title in (("os", "OS"), ("app_version", "App version"), ("app", "App"),
                             ("channel", "Channel"), ("segment", "Segment")):  # fmt: skip
        board = _row(board, title, [
            p.pie(f"Events by {title.lower()}", f"The day's valid events by {title.lower()}.",
                  p.day(rk.by_dimension(dimension, "events"))),
            p.hash_table(f"Sessions by {title.lower()}", "Sessions by the "
                         f"{title.lower()} of their first event.",
                         p.day(rk.by_dimension(dimension, "sessions")), dimension, "sessions"),
            p.hash_bars(f"Conversion by {title.lower()}", "Share of those sessions with a "
                        "conversion event.", p.day(rk.by_dimension(dimension, rk.CONVERSION_RATE)),
                        dimension, "conversion", unit="percentunit", max_value=1),
        ])  # fmt: skip
    return _row(board, "The month by day", [
        p.month_bars("Sessions by day of month", "Sessions started each UTC day of the month.",
                     "sessions", "sessions"),
        p.month_bars("Conversion by day of month", "Share of each day's sessions that "
                     "converted.", rk.CONVERSION_RATE, "conversion"),
    ])  # fmt: skip


def offers() -> dashboard.Dashboard:
    """What the campaigns did on the day: matched, sent, held out, suppressed and why."""
    board = _board("bc-offers", "Bank clickstream: offers",
                   "Offer decisions by the UTC day of their trigger event.",
                   _variables(campaign=True))  # fmt: skip
    board = _row(board, "Campaigns", [
        p.hash_bars("Matched", "Triggers whose rule said yes, by campaign.",
                    p.offers(rk.OFFERS_MATCHED), "campaign", "matched", width=6),
        p.hash_bars("Sent", "Offers sent, by campaign.", p.offers(rk.OFFERS_SENT), "campaign",
                    "sent", width=6),
        p.hash_bars("Held out", "Would-have-sent offers kept back for the control groups and "
                    "the global holdout (uplift).", p.offers(rk.OFFERS_HELD_OUT), "campaign",
                    "held_out", width=6),
        p.hash_bars("Suppressed", "Matches not sent (consent, caps, cooldown, quiet hours, "
                    "priority, expiry).", p.offers(rk.OFFERS_SUPPRESSED), "campaign",
                    "suppressed", width=6),
    ])  # fmt: skip
    return _row(board, "Why and how fast", [
        p.pie("Why offers did not go out", "Suppressions and hold-outs by reason.",
              p.offers(rk.OFFERS_REASONS)),
        p.hash_table("Campaign: ${campaign}", "One campaign's decisions by outcome and reason.",
                     p.offers(rk.campaign("${campaign}")), "outcome", "decisions"),
        p.hash_bars("Rule errors", "Rules that raised or ran past their time limit, by "
                    "campaign: fix the campaign file.", p.offers(rk.OFFERS_RULE_ERROR),
                    "campaign", "errors"),
        p.hash_bars("Decision latency", "Match decisions by time from the trigger entering "
                    "Kafka to the decision (le_0005ms … le_1000ms, over): the goal is under "
                    "120 ms.", p.offers(rk.OFFERS_LATENCY), "bucket", "decisions",
                    by_label=True, fields=r"^(le_\d+ms|over)$"),
        p.per_minute("Offers per minute", "Sent and held out by the minute they went out; "
                     "suppressed by the minute of their event.",
                     rk.series_key(p.PREFIX, rk.OFFERS), width=16),
    ])  # fmt: skip


def pipeline() -> dashboard.Dashboard:
    """Is the job keeping up: throughput, event-time progress, rejects and lateness."""
    key = rk.pipeline_key(p.PREFIX)
    series = rk.series_key(p.PREFIX, rk.EVENTS_BY_TYPE)
    board = _board("bc-pipeline", "Bank clickstream: pipeline health",
                   "The job's own counters: what it accepted, rejected and how far it has got.",
                   _variables())  # fmt: skip
    board = _row(board, "Throughput and progress", [
        p.per_minute("Valid events per minute", "Accepted unique events per closed minute of "
                     "event time.", series, ["total"], width=12),
        p.stat_field("Event time reached", "The low watermark: how far every input partition "
                     "with data to give has got; far behind now means lag.", key,
                     "low_watermark_ms", unit="dateTimeFromNow", width=6),
        p.stat_field("Last epoch closed", "When the job last closed an epoch, the moment "
                     "its recovery snapshot is written (every CLICKSTREAM_EPOCH_INTERVAL_S): "
                     "a crash replays from there.", rk.ops_recent_key(p.PREFIX),
                     "epoch_closed_at_ms", unit="dateTimeFromNow", width=6),
    ])  # fmt: skip
    board = _row(board, "Input", [
        p.stat_field("Valid events", "Accepted unique events since the recovery store began.",
                     key, "valid", width=6),
        p.stat_field("Consumer lag", "Messages on the events topics the job has not read yet "
                     "(all partitions, by the end each consumer last fetched): growing means "
                     "the job does not keep up.", rk.ops_lag_key(p.PREFIX), "total",
                     warn_above=100_000, width=6),
        p.hash_bars("Lag by partition", "Messages not read yet, per topic partition.",
                    rk.ops_lag_key(p.PREFIX), "partition", "behind", fields="#", width=12),
    ])  # fmt: skip
    board = _row(board, "Over time (wall clock)", [
        p.counters("Accepted since the start", "The valid-event counter sampled every 10 s: "
                   "a flat line while Kafka has messages means the job is stuck.",
                   [rk.ops_counter_key(p.PREFIX, "valid")]),
        p.counters("Rejected since the start", "Dead letters, late events, duplicates and "
                   "failing campaign rules, sampled every 10 s: a rising line is a problem "
                   "arriving now.", [rk.ops_counter_key(p.PREFIX, c) for c in
                   ("dead_letters", "late", "duplicates", "offer_rule_errors")]),
    ])  # fmt: skip
    return _row(board, "Rejects", [
        p.stat_field("Dead letters", "Messages on the dead-letter topics.", key, "dead_letters",
                     warn_above=1),
        p.stat_field("Late events", "Events behind the watermark (archived, in no minute).", key,
                     "late", warn_above=1),
        p.stat_field("Duplicates", "Repeated event ids dropped.", key, "duplicates"),
        p.stat_field("Campaign rule errors", "Campaign rules that raised or ran past their "
                     "time limit: the offers dashboard says which.", key, "offer_rule_errors",
                     warn_above=1),
        p.hash_bars("Dead letters by stage", "Where messages were rejected: decode (not JSON), "
                    "validate (the contract), …", key, "stage", "dead_letters",
                    fields=r"^dead_letters\..+"),
    ])  # fmt: skip


def all_boards(funnels: Sequence[Funnel]) -> dict[str, dashboard.Dashboard]:
    """Every dashboard by file name."""
    return {
        "overview": overview(),
        "journeys": journeys(funnels),
        "cross-sections": cross_sections(),
        "offers": offers(),
        "pipeline": pipeline(),
    }
