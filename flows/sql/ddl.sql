-- The archive as Hive tables in Trino (or Presto). Placeholders: {catalog}, {schema}, {location}
-- (s3://bucket/prefix). Partitions: run sync.sql after new hours arrive.
CREATE SCHEMA IF NOT EXISTS {catalog}.{schema};

CREATE TABLE IF NOT EXISTS {catalog}.{schema}.events (
    event_id varchar,
    event_time timestamp(3),
    event_type varchar,
    channel varchar,
    customer_id varchar,
    device_id varchar,
    app varchar,
    app_version varchar,
    os varchar,
    os_version varchar,
    screen varchar,
    element varchar,
    form varchar,
    properties varchar,
    identity varchar,
    ingest_topic varchar,
    ingest_partition integer,
    ingest_offset bigint,
    ingest_time timestamp(3),
    dt varchar,
    hour varchar
)
WITH (
    external_location = '{location}/events',
    format = 'PARQUET',
    partitioned_by = ARRAY['dt', 'hour']
);

CREATE TABLE IF NOT EXISTS {catalog}.{schema}.sessions (
    session_id varchar,
    identity varchar,
    customer_id varchar,
    absorbed_session_ids array(varchar),
    devices array(varchar),
    start_time timestamp(3),
    end_time timestamp(3),
    duration_ms bigint,
    event_count integer,
    screens array(varchar),
    exit_screen varchar,
    converted boolean,
    app varchar,
    os varchar,
    app_version varchar,
    channel varchar,
    segment varchar,
    event_ids array(varchar),
    dt varchar,
    hour varchar
)
WITH (
    external_location = '{location}/sessions',
    format = 'PARQUET',
    partitioned_by = ARRAY['dt', 'hour']
);

-- Every offer decision (docs/offers-contract.md, "Offer-decisions topic"): the match and the
-- release of each offer, once each, in the partition of the trigger's event time. A 'sent'
-- release also carries the offer's channel and text.
CREATE TABLE IF NOT EXISTS {catalog}.{schema}.offers (
    decision_id varchar,
    offer_id varchar,
    stage varchar,
    outcome varchar,
    reason varchar,
    detail varchar,
    campaign_id varchar,
    campaign_version integer,
    customer_id varchar,
    trigger_event_id varchar,
    trigger_time timestamp(3),
    decided_at timestamp(3),
    send_at timestamp(3),
    latency_ms bigint,
    channel varchar,
    template varchar,
    params varchar,
    dt varchar,
    hour varchar
)
WITH (
    external_location = '{location}/offers',
    format = 'PARQUET',
    partitioned_by = ARRAY['dt', 'hour']
);

-- Every app event with its final session and identity: each closed session lists its events
-- (event_ids), so the view is an equi-join on event_id that any engine runs as a hash join.
-- Business events (ATM, branch, core) belong to no session. dt and hour are the event's
-- partition, session_dt the session's (its start): a report over a range of days filters both.
CREATE OR REPLACE VIEW {catalog}.{schema}.event_sessions AS
SELECT e.event_id, e.event_time, e.event_type, e.customer_id, e.device_id, e.screen,
       e.element, e.form, s.session_id, s.identity, s.segment, e.dt, e.hour,
       s.dt AS session_dt
FROM {catalog}.{schema}.sessions AS s
CROSS JOIN UNNEST(s.event_ids) AS member(event_id)
JOIN {catalog}.{schema}.events AS e ON e.event_id = member.event_id;
