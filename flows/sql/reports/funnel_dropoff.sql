-- Funnel drop-off for every configured funnel (the shipped ones plus CLICKSTREAM_FUNNELS), by
-- the session's OS, app version and customer category (segment) and by the month and day of
-- month of the session's start (UTC). Definition (PRODUCT.md, the live Redis figures
-- cs:day:<day>:funnel:<name>, which are these rows summed over OS, app version and segment):
-- a session reaches step k if, starting at an event of step 1, it has events of steps 2..k in
-- that order (by event time, then event id; one event per step) no later than the funnel's
-- conversion window after that step 1 event; every step 1 event is tried as a start and the
-- furthest reach counts. Steps are a screen viewed (screen:<screen>) or an event type
-- (event:<event_type>).
--   sessions:  sessions reaching steps 1..step (so a session counts at each step it reached);
--   dropped:   of those, the sessions that did not reach the next step (empty at the last step);
--   rate_from_start: sessions / the sessions reaching step 1 in the same row group.
-- A session's OS and app version are those of its first event ('unknown' when absent), its
-- segment its customer's ('unknown' for anonymous sessions). The placeholders named funnel_...
-- are filled in from the configured funnels by flows/trino_funnels.py.
WITH session_steps AS (
    SELECT session_id,
           array_agg(date_diff('millisecond', TIMESTAMP '1970-01-01 00:00:00', event_time)
                     ORDER BY event_time, event_id) AS times,
           {funnel_step_arrays}
    FROM {event_sessions}
    WHERE {funnel_any_step}
    GROUP BY session_id
),
reached AS (
    SELECT r.funnel, s.session_id, r.reached
    FROM session_steps AS s
    -- One row per funnel and session, so that event_sessions is read once for all funnels.
    CROSS JOIN UNNEST(
        {funnel_names},
        {funnel_reached}
    ) AS r (funnel, reached)
),
steps (funnel, step, step_name, last_step) AS (
    VALUES
        {funnel_steps}
),
counts AS (
    SELECT st.funnel, st.step, st.step_name,
           date_format(s.start_time, '%Y-%m') AS month,
           day(s.start_time) AS day_of_month,
           coalesce(s.os, 'unknown') AS os,
           coalesce(s.app_version, 'unknown') AS app_version,
           s.segment,
           count(*) AS sessions,
           IF(st.step < st.last_step, count_if(r.reached = st.step)) AS dropped
    FROM reached AS r
    JOIN {sessions} AS s ON s.session_id = r.session_id
    JOIN steps AS st ON st.funnel = r.funnel AND st.step <= r.reached
    GROUP BY st.funnel, st.step, st.step_name, st.last_step, date_format(s.start_time, '%Y-%m'),
             day(s.start_time), coalesce(s.os, 'unknown'), coalesce(s.app_version, 'unknown'),
             s.segment
)
SELECT funnel, step, step_name, month, day_of_month, os, app_version, segment, sessions, dropped,
       round(CAST(sessions AS double) / first_value(sessions) OVER (
           PARTITION BY funnel, month, day_of_month, os, app_version, segment ORDER BY step
       ), 6) AS rate_from_start
FROM counts
ORDER BY funnel, month, day_of_month, os, app_version, segment, step
