"""Offer decisions held in recoverable state until written to the archive's ``offers`` table
(one row per decision: the match and the release of every offer).

Rows from every offers shard are grouped by the hour of their trigger's event time
(:class:`HourGroups`, in a step keyed by table part; an offer's rows go to the part of its
``offer_id``): an offer's match and release land in the same partition and the same object,
named by the table part and the hour, rewritten whole. A group stays in the state until the
input is past its hour by ``retire_ms`` *and* every offer matched in it as ``pending`` has its
release (an offer held over the quiet hours is released the next morning), so that its object is
final when it leaves; after ``max_hold_ms`` it leaves anyway, and a release still to come gets
an object of its own.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from offers.records import Decision, OfferMessage
from state.archive_layout import HOUR_MS, OFFERS_TABLE
from state.hour_groups import HourGroups
from state.snapshots import SnapshotVersionError, decode_snapshot, encode_snapshot

SNAPSHOT_VERSION = 2


class _DecisionColumns(msgspec.Struct, frozen=True, gc=False, array_like=True):
    """The columns every version of an ``offers`` row has (times as epoch ms)."""

    decision_id: str
    offer_id: str
    stage: str
    outcome: str
    reason: str | None
    detail: str | None
    campaign_id: str
    campaign_version: int
    customer_id: str
    trigger_event_id: str
    trigger_ms: int
    decided_at_ms: int
    send_at_ms: int | None
    latency_ms: int | None
    channel: str | None = None
    """The offer's channel, on a ``sent`` release."""


class OfferRow(_DecisionColumns, frozen=True, gc=False, array_like=True):
    """One decision as a row of the ``offers`` table."""

    template: str | None = None
    """The campaign's template of the message sent, on a ``sent`` release: with ``params`` it
    says what was sent, without the personal data the sent text holds (the first name)."""
    params: str | None = None
    """The template's non-personal parameters (JSON), on a ``sent`` release."""


PERSONAL_PARAMS = frozenset({"first_name", "phone"})
"""Template parameters never archived (docs/security.md)."""

_json = msgspec.json.Encoder(order="sorted").encode


def archived_params(params: dict[str, Any]) -> str:
    """An offer's template parameters as the archive keeps them: without personal ones."""
    return _json({k: v for k, v in params.items() if k not in PERSONAL_PARAMS}).decode()


class _OfferRowV1(_DecisionColumns, frozen=True, gc=False, array_like=True):
    """A row as version 1 kept it: with the sent text (personal data), dropped on restore."""

    text: str | None = None


def _ms(text: str) -> int:
    """Epoch ms of the contract's RFC 3339 UTC text (``2026-11-25T08:00:45.000Z``)."""
    return round(datetime.fromisoformat(text).timestamp() * 1000)


def offer_rows(decisions: list[Decision], offers: list[OfferMessage]) -> list[OfferRow]:
    """The rows of a batch of decisions; a ``sent`` release carries its offer's channel,
    template and non-personal parameters.
    """
    sent = {o.offer_id: o for o in offers}
    rows = []
    for d in decisions:
        offer = sent.get(d.offer_id) if d.stage == "release" and d.outcome == "sent" else None
        rows.append(
            OfferRow(
                decision_id=d.decision_id,
                offer_id=d.offer_id,
                stage=d.stage,
                outcome=d.outcome,
                reason=d.reason,
                detail=d.detail,
                campaign_id=d.campaign_id,
                campaign_version=d.campaign_version,
                customer_id=d.customer_id,
                trigger_event_id=d.trigger_event_id,
                trigger_ms=_ms(d.trigger_time),
                decided_at_ms=_ms(d.decided_at),
                send_at_ms=None if d.send_at is None else _ms(d.send_at),
                latency_ms=d.latency_ms,
                channel=None if offer is None else offer.channel,
                template=None if offer is None else offer.template,
                params=None if offer is None else archived_params(offer.params),
            )
        )
    return rows


class OfferArchiveSnapshot(msgspec.Struct, frozen=True):
    """Recoverable state of one part of the offers table: its decisions by trigger hour."""

    version: int
    groups: dict[int, list[OfferRow]]
    retired_below: int
    shard: str


def _trigger_ms(row: OfferRow) -> int:
    return row.trigger_ms


def _decision_id(row: OfferRow) -> str:
    return row.decision_id


class _OfferArchiveSnapshotV1(msgspec.Struct, frozen=True):
    version: int
    groups: dict[int, list[_OfferRowV1]]
    retired_below: int
    shard: str


def _migrate(version: int, snapshot: bytes) -> OfferArchiveSnapshot:
    """Version 1 kept each sent offer's text; its rows come back without it (the objects they
    are rewritten into then hold no personal data either).
    """
    if version != 1:
        msg = f"OfferArchiveSnapshot version {version!r} cannot be restored (this code reads 1, 2)"
        raise SnapshotVersionError(msg)
    old = msgspec.msgpack.decode(snapshot, type=_OfferArchiveSnapshotV1)
    fields = _DecisionColumns.__struct_fields__
    groups = {
        hour: [OfferRow(**{f: getattr(row, f) for f in fields}) for row in rows]
        for hour, rows in old.groups.items()
    }
    return OfferArchiveSnapshot(SNAPSHOT_VERSION, groups, old.retired_below, old.shard)


class OfferArchive(HourGroups[OfferRow]):
    """Decisions from every offers shard, by the hour of their trigger."""

    def __init__(
        self,
        max_age_s: float,
        retire_ms: int,
        max_hold_ms: int,
        snapshot: bytes | None = None,
    ) -> None:
        """Create the buffer, empty or from a snapshot.

        Args:
            max_age_s: a group with new decisions is rewritten at least this often.
            retire_ms: a group may leave the state this long after its hour (input progress).
            max_hold_ms: ... and leaves then even with releases still to come.
            snapshot: bytes from :meth:`snapshot`.
        """
        super().__init__(OFFERS_TABLE, max_age_s, retire_ms, _trigger_ms, _decision_id)
        self._max_hold_ms = max_hold_ms
        self._waiting: dict[int, set[str]] = {}
        """Hour → offers matched as pending in it and not released yet (derived, not stored)."""
        if snapshot is not None:
            state = decode_snapshot(
                snapshot, OfferArchiveSnapshot, SNAPSHOT_VERSION, migrate=_migrate
            )
            self._restore(state.groups, state.retired_below, state.shard)
            for hour, rows in self._groups.items():
                for row in rows:
                    self._added(hour, row)

    @property
    def waiting(self) -> int:
        """Offers whose release is still to come."""
        return sum(len(w) for w in self._waiting.values())

    def _added(self, hour: int, row: OfferRow) -> None:
        if row.stage == "match" and row.outcome == "pending":
            self._waiting.setdefault(hour, set()).add(row.offer_id)
        elif row.stage == "release":
            waiting = self._waiting.get(hour)
            if waiting is not None:
                waiting.discard(row.offer_id)
                if not waiting:
                    del self._waiting[hour]

    def _may_retire(self, hour: int, progress_ms: int) -> bool:
        if hour not in self._waiting:
            return True
        return (hour + 1) * HOUR_MS + self._max_hold_ms <= progress_ms

    def _retired(self, hour: int) -> None:
        self._waiting.pop(hour, None)

    def snapshot(self) -> bytes:
        """An immutable copy of the state."""
        return encode_snapshot(
            OfferArchiveSnapshot(SNAPSHOT_VERSION, self._groups, self._retired_below, self._shard)
        )
