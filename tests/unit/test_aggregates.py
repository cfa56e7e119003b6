"""Job-wide totals projected as absolute Redis values."""

from __future__ import annotations

from operators.aggregates import MinuteSeries, PipelineTotals, RedisKeys
from operators.shard_state import MINUTE_MS
from state.records import HashWrite, StreamEntry

KEYS = RedisKeys("cs")
T0 = 1_768_464_000_000  # 2026-01-15T08:00Z


def test_deltas_from_several_shards_become_absolute_totals() -> None:
    series = MinuteSeries(KEYS, delay_ms=300_000, retention_s=3600)
    series.apply([{T0: {"click": 2}}, {T0: {"click": 1, "login": 1}}])
    writes = series.apply([{T0: {"click": 4}}])
    assert writes == [
        HashWrite("cs:minute:events_by_type:2026-01-15T08:00", {"click": 7, "login": 1}, 3600)
    ]


def test_a_minute_gets_one_stream_entry_once_the_watermark_passes_it() -> None:
    series = MinuteSeries(KEYS, delay_ms=120_000, retention_s=3600)
    series.apply([{T0: {"click": 1}}], T0 + 2 * MINUTE_MS)
    writes = series.apply([{T0 + 3 * MINUTE_MS: {"error": 2}}], T0 + 3 * MINUTE_MS)
    entries = [w for w in writes if isinstance(w, StreamEntry)]
    assert [e.id_ms for e in entries] == [T0]
    assert entries[0].fields["click"] == 1 and entries[0].fields["total"] == 1
    assert entries[0].fields["transaction"] == 0  # every type has a column from the first entry
    again = series.apply([{T0 + 3 * MINUTE_MS: {"error": 1}}], T0 + 4 * MINUTE_MS)
    assert not [w for w in again if isinstance(w, StreamEntry)]


def test_a_minute_stays_open_while_a_slow_partition_holds_the_watermark_back() -> None:
    # A partition read hours ahead sends deltas for late minutes; the watermark (the slowest
    # partition's) has not passed the first minute, so no stream entry is final yet.
    series = MinuteSeries(KEYS, delay_ms=0, retention_s=86_400)
    series.apply([{T0: {"click": 1}}], T0)
    ahead = series.apply([{T0 + 180 * MINUTE_MS: {"click": 1}}], T0 + 30_000)
    assert not [w for w in ahead if isinstance(w, StreamEntry)]
    caught_up = series.apply([{T0: {"login": 1}}], T0 + MINUTE_MS)
    entries = [w for w in caught_up if isinstance(w, StreamEntry)]
    assert [(e.id_ms, e.fields["total"]) for e in entries] == [(T0, 2)]


def test_the_end_of_a_bounded_run_closes_every_minute_but_moves_no_watermark() -> None:
    # A back-fill's last minutes: the watermark (less the series' delay) has not passed them,
    # and a session that started in one is still open; at the end of the input all are final.
    series = MinuteSeries(KEYS, delay_ms=50 * MINUTE_MS, retention_s=86_400)
    series.apply([{T0 + m * MINUTE_MS: {"click": m + 1} for m in range(3)}], T0, {"s0": T0})
    ended = [w for w in series.close_all() if isinstance(w, StreamEntry)]
    assert [(e.id_ms, e.fields["total"]) for e in ended] == [
        (T0 + m * MINUTE_MS, m + 1) for m in range(3)
    ]
    assert not [w for w in series.close_all() if isinstance(w, StreamEntry)]  # once each
    # A later run resuming from this state: its new minutes wait for the watermark as before.
    resumed = MinuteSeries(KEYS, 50 * MINUTE_MS, 86_400, series.snapshot())
    later = resumed.apply([{T0 + 60 * MINUTE_MS: {"click": 1}}], T0 + 61 * MINUTE_MS)
    assert not [w for w in later if isinstance(w, StreamEntry)]


def test_a_restored_series_continues_from_the_same_totals() -> None:
    series = MinuteSeries(KEYS, delay_ms=0, retention_s=3600)
    series.apply([{T0: {"click": 5}}])
    restored = MinuteSeries(KEYS, 0, 3600, series.snapshot())
    writes = restored.apply([{T0: {"click": 1}}])
    assert writes[0] == HashWrite("cs:minute:events_by_type:2026-01-15T08:00", {"click": 6}, 3600)


def test_pipeline_totals_sum_every_delta() -> None:
    totals = PipelineTotals(KEYS)
    totals.apply([{"valid": 3, "late": 1}, {"valid": 2, "dead_letters": 1}])
    restored = PipelineTotals(KEYS, totals.snapshot())
    (write, *_) = restored.apply([{"valid": 1}])
    assert isinstance(write, HashWrite) and write.key == "cs:pipeline"
    assert write.fields == {
        "valid": 6, "late": 1, "dead_letters": 1, "duplicates": 0, "offer_rule_errors": 0,
    }  # fmt: skip


def test_pipeline_counters_are_sampled_by_the_wall_clock_for_alerts() -> None:
    now = [1_800_000_000.0]
    totals = PipelineTotals(KEYS, clock=lambda: now[0], sample_s=10.0)

    def sampled(delta: dict[str, int]) -> dict[str, tuple[int | float | str, ...]]:
        entries = [w for w in totals.apply([delta]) if isinstance(w, StreamEntry)]
        return {e.key: (e.id_ms, *e.fields.values()) for e in entries}

    first = sampled({"valid": 5, "dead_letters": 1})
    assert first["cs:ops:valid"] == (1_800_000_000_000, 5)
    assert first["cs:ops:dead_letters"] == (1_800_000_000_000, 1)
    assert first["cs:ops:offer_rule_errors"] == (1_800_000_000_000, 0)
    now[0] += 4  # within the sampling interval: the hash only
    assert sampled({"valid": 1}) == {}
    # The end of a bounded input takes one last sample, due or not.
    final = [w for w in totals.apply([], sample=True) if isinstance(w, StreamEntry)]
    assert {e.key: e.fields for e in final}["cs:ops:valid"] == {"valid": 6}
    now[0] += 10
    assert sampled({"dead_letters": 2})["cs:ops:dead_letters"] == (
        1_800_000_014_000, 3,
    )  # fmt: skip


def test_the_pipeline_hash_says_how_much_each_counter_grew_lately_for_the_alert_rules() -> None:
    now = [1_800_000_000.0]
    totals = PipelineTotals(KEYS, clock=lambda: now[0], sample_s=10.0)

    def recent(delta: dict[str, int]) -> dict[str, int | float | str]:
        (_, write, *_) = totals.apply([delta])
        assert isinstance(write, HashWrite) and write.key == "cs:ops:recent"
        return dict(write.fields)

    assert recent({"valid": 5}) == {
        "valid_last_5m": 0, "dead_letters_last_10m": 0, "late_last_10m": 0,
        "offer_rule_errors_last_10m": 0,
    }  # fmt: skip
    now[0] += 10
    assert recent({"valid": 3, "dead_letters": 2})["valid_last_5m"] == 3
    now[0] += 390  # the first two samples are past the 5-minute window
    grown = recent({"valid": 1})
    assert grown["valid_last_5m"] == 1
    assert grown["dead_letters_last_10m"] == 2  # still inside its 10 minutes
    now[0] += 700
    assert recent({"late": 4}) == {
        "valid_last_5m": 0, "dead_letters_last_10m": 0, "late_last_10m": 4,
        "offer_rule_errors_last_10m": 0,
    }  # fmt: skip


def test_the_consumer_lag_is_each_partitions_latest_report_and_their_sum() -> None:
    totals = PipelineTotals(KEYS)

    def lag(delta: dict[str, int]) -> dict[str, int | float | str] | None:
        found = [w for w in totals.apply([delta]) if w.key == "cs:ops:lag"]
        return found[0].fields if found and isinstance(found[0], HashWrite) else None

    assert lag({"lag:bank.events#0": 700, "lag:bank.events#1": 300}) == {
        "bank.events#0": 700, "bank.events#1": 300, "total": 1000,
    }  # fmt: skip
    assert lag({"lag:bank.events#0": 0}) == {"bank.events#0": 0, "bank.events#1": 300, "total": 300}
    assert lag({"valid": 5}) is None  # no report, no write
    # A level, not a count: it is in no counter of the pipeline hash.
    (pipeline, *_) = totals.apply([])
    assert isinstance(pipeline, HashWrite) and not any("lag" in k for k in pipeline.fields)


def test_the_last_epoch_close_is_reported_for_the_snapshot_age_panel() -> None:
    now = [1_800_000_000.0]
    totals = PipelineTotals(KEYS, clock=lambda: now[0])
    (_, recent, *_) = totals.apply([{"valid": 1}])
    assert isinstance(recent, HashWrite) and "epoch_closed_at_ms" not in recent.fields
    totals.epoch_closed()
    now[0] += 5
    (_, recent, *_) = totals.apply([{"valid": 1}])
    assert isinstance(recent, HashWrite)
    assert recent.fields["epoch_closed_at_ms"] == 1_800_000_000_000
