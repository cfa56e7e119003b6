"""The job's logic, free of Bytewax: each step's state and what it does with one batch.

- :mod:`~operators.decode`: raw messages into valid events grouped by identity shard, and dead
  letters.
- :mod:`~operators.shard_state` (with :mod:`~operators.identity` and :mod:`~operators.clock`):
  the identity shards, i.e. dedupe, the watermark per input partition and each device's
  identity; the per-event work runs in the native core (``clickstream_native.ShardCore``).
- :mod:`~operators.journeys` (with :mod:`~operators.sessions`): the journeys shards, i.e.
  sessions and every figure, counted by the native core (``clickstream_native.JourneysCore``).
- :mod:`~operators.aggregates`: the job-wide totals and minute series, written to Redis as
  absolute values.
- :mod:`~operators.archive` and :mod:`~operators.session_archive`: accepted events and closed
  sessions held in recoverable state until written as Parquet.

The Bytewax steps that run them are thin shims in :mod:`flows` (``shard_steps.py``,
``archive_steps.py``, ``counters.py``). Of the project's packages, this one imports only
:mod:`state`, besides the native core (docs/architecture.md).
"""
