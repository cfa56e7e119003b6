-- Sessions, converted sessions and conversion rate by customer segment and day of month.
SELECT segment, day(start_time) AS day_of_month, count(*) AS sessions,
       count_if(converted) AS conversions,
       round(CAST(count_if(converted) AS double) / count(*), 6) AS conversion_rate
FROM {sessions}
GROUP BY segment, day(start_time)
ORDER BY segment, day_of_month
