-- Sessions per customer category (segment; anonymous sessions are 'unknown'), with the
-- customers behind them and the average session length.
SELECT segment, count(*) AS sessions, count(DISTINCT customer_id) AS customers,
       round(avg(duration_ms) / 1000.0, 1) AS avg_seconds
FROM {sessions}
GROUP BY segment
ORDER BY sessions DESC, segment
