"""Read what the job left in Redis, S3 and Kafka, for comparison with the reference."""

from __future__ import annotations

import io
import time
from typing import Any

import pyarrow.parquet as pq
import redis
import s3fs
from confluent_kafka import Consumer, KafkaError, TopicPartition
from s3fs.utils import FileExpired

from devstack.polling import poll_until
from state.settings import Settings


def redis_dump(client: redis.Redis, prefix: str) -> dict[str, Any]:
    """Every key under ``prefix``: hashes as dicts, streams as lists of (id, fields)."""
    dump: dict[str, Any] = {}
    redis_any: Any = client
    for raw_key in redis_any.scan_iter(match=f"{prefix}:*", count=1000):
        key = raw_key.decode()
        if key.startswith(f"{prefix}:customers:"):
            continue  # the customer store: binary profiles, not figures
        kind = redis_any.type(raw_key).decode()
        if kind == "hash":
            dump[key] = {k.decode(): v.decode() for k, v in redis_any.hgetall(raw_key).items()}
        elif kind == "zset":
            dump[key] = [
                (m.decode(), s) for m, s in redis_any.zrange(raw_key, 0, -1, withscores=True)
            ]
        elif kind == "stream":
            dump[key] = [
                (entry_id.decode(), {k.decode(): v.decode() for k, v in fields.items()})
                for entry_id, fields in redis_any.xrange(raw_key)
            ]
        else:
            dump[key] = kind
    return dump


def archive_rows(
    fs: s3fs.S3FileSystem, settings: Settings, table: str = "events"
) -> list[dict[str, Any]]:
    """Every row of an archive table, with the object it came from and its Hive partition.

    A running job may replace an object while it is read; the listing is then read again.
    """
    for _ in range(10):
        try:
            return _read_archive(fs, f"{settings.s3_bucket}/{settings.s3_prefix}/{table}")
        except (FileExpired, FileNotFoundError):
            time.sleep(0.2)
    return _read_archive(fs, f"{settings.s3_bucket}/{settings.s3_prefix}/{table}")


def _read_archive(fs: s3fs.S3FileSystem, root: str) -> list[dict[str, Any]]:
    fs.invalidate_cache()
    rows: list[dict[str, Any]] = []
    try:
        paths = sorted(p for p in fs.find(root) if p.endswith(".parquet"))
    except FileNotFoundError:
        return rows
    for path in paths:
        data = pq.read_table(io.BytesIO(fs.cat_file(path))).to_pylist()
        dt = path.split("/dt=")[1].split("/")[0]
        hour = path.split("/hour=")[1].split("/")[0]
        for row in data:
            row["_object"] = path
            row["_dt"], row["_hour"] = dt, hour
        rows.extend(data)
    return rows


def topic_values(settings: Settings, topic: str, timeout_s: float = 20) -> list[bytes]:
    """Every message value on ``topic`` (all partitions, from the beginning to the end)."""
    consumer = Consumer(
        {
            **settings.kafka_config(),
            "group.id": "readback",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    metadata = consumer.list_topics(topic, timeout=10).topics[topic]
    if metadata.error is not None:
        consumer.close()
        return []
    partitions = [TopicPartition(topic, p, 0) for p in metadata.partitions]
    consumer.assign([TopicPartition(topic, p, -2) for p in metadata.partitions])
    values: list[bytes] = []
    done: set[int] = set()
    ends = {p.partition: consumer.get_watermark_offsets(p, timeout=10)[1] for p in partitions}
    done = {p for p, end in ends.items() if end == 0}

    def read_one() -> bool:
        """Read a message (the consumer's poll waits for it); True once every partition ended."""
        if len(done) < len(partitions):
            message = consumer.poll(0.5)
            if message is not None:
                error = message.error()
                if error is None:
                    values.append(message.value() or b"")
                elif error.code() == KafkaError._PARTITION_EOF:
                    done.add(message.partition() or 0)
        return len(done) >= len(partitions)

    poll_until(read_one, timeout_s, 0.0)
    consumer.close()
    return values
