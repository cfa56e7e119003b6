-- Valid unique events by type and day.
SELECT dt, event_type, count(*) AS events
FROM {events}
GROUP BY dt, event_type
ORDER BY dt, event_type
