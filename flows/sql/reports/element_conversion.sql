-- Conversion of buttons, screens and forms, by the session's OS, app version and customer
-- category (segment) and by the month and day of month of the session's start (UTC). The same
-- definitions as the live Redis figures cs:day:<day>:screen|button|form:* (docs/redis-keys.md),
-- which are these rows summed over OS, app version and segment for one day:
--   screen: a screen a session viewed (screen_view); sessions = sessions viewing it,
--           conversions = of those, the converted sessions (at least one conversion event);
--   button: 'screen|element' of a click ('unknown' when the click has no screen);
--           sessions = sessions clicking it, conversions = of those, the converted ones;
--   form:   a form a session started (form_start); sessions = sessions starting it,
--           conversions = of those, the sessions that also submitted it (form_submit).
-- Each session counts once per target, however often it viewed, clicked or started it. A
-- session's OS and app version are those of its first event ('unknown' when absent), its
-- segment its customer's ('unknown' for anonymous sessions). Events map to their final session
-- through the view event_sessions.
WITH targets AS (
    SELECT session_id,
           CASE event_type
               WHEN 'screen_view' THEN 'screen'
               WHEN 'click' THEN 'button'
               ELSE 'form'
           END AS kind,
           CASE event_type
               WHEN 'screen_view' THEN screen
               WHEN 'click' THEN coalesce(screen, 'unknown') || '|' || element
               ELSE form
           END AS target,
           event_type
    FROM {event_sessions}
    WHERE (event_type = 'screen_view' AND screen IS NOT NULL)
       OR (event_type = 'click' AND element IS NOT NULL)
       OR (event_type IN ('form_start', 'form_submit') AND form IS NOT NULL)
),
reached AS (
    SELECT session_id, kind, target,
           bool_or(event_type <> 'form_submit') AS reached,
           bool_or(event_type = 'form_submit') AS submitted
    FROM targets
    GROUP BY session_id, kind, target
)
SELECT r.kind, r.target,
       date_format(s.start_time, '%Y-%m') AS month,
       day(s.start_time) AS day_of_month,
       coalesce(s.os, 'unknown') AS os,
       coalesce(s.app_version, 'unknown') AS app_version,
       s.segment,
       count(*) AS sessions,
       count_if(IF(r.kind = 'form', r.submitted, s.converted)) AS conversions,
       round(CAST(count_if(IF(r.kind = 'form', r.submitted, s.converted)) AS double) / count(*), 6)
           AS conversion_rate
FROM reached AS r
JOIN {sessions} AS s ON s.session_id = r.session_id
WHERE r.reached
GROUP BY r.kind, r.target, date_format(s.start_time, '%Y-%m'), day(s.start_time),
         coalesce(s.os, 'unknown'), coalesce(s.app_version, 'unknown'), s.segment
ORDER BY r.kind, r.target, month, day_of_month, os, app_version, s.segment
