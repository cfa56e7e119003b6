-- Where customers stop: the exit screen of each session (its last screen_view), by app and
-- app version of the session's first event.
SELECT app, app_version, exit_screen, count(*) AS sessions
FROM {sessions}
WHERE exit_screen IS NOT NULL
GROUP BY app, app_version, exit_screen
ORDER BY sessions DESC, app, app_version, exit_screen
