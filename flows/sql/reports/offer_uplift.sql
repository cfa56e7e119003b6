-- Offer uplift per campaign: conversion of the customers who got the campaign's offer
-- (treatment: a release decision 'sent') against the customers held out of it (control: a
-- release decision 'held_out', by the global holdout or the campaign's control group; they went
-- through the same consent, caps, cooldown and re-check and would have been sent).
-- A customer counts once per campaign and group, and converted when the events table holds a
-- 'conversion' event of theirs (customer_id) at or after the send time of one of their offers of
-- the campaign and less than 7 days after it (for the control group, the time it would have
-- been sent). Rates are converted customers / customers; uplift = treated_rate - control_rate,
-- NULL while a group is empty. Offers sent less than 7 days before the newest archived event
-- are still inside their window, so recent figures can still grow.
WITH released AS (
    SELECT DISTINCT campaign_id, customer_id, outcome, send_at
    FROM {offers}
    WHERE stage = 'release' AND outcome IN ('sent', 'held_out')
),
conversions AS (
    SELECT customer_id, event_time
    FROM {events_after_offers}
    WHERE event_type = 'conversion' AND customer_id IS NOT NULL
),
per_customer AS (
    SELECT r.campaign_id, r.customer_id, r.outcome, count(c.event_time) > 0 AS converted
    FROM released AS r
    LEFT JOIN conversions AS c
      ON c.customer_id = r.customer_id
     AND c.event_time >= r.send_at
     AND c.event_time < r.send_at + INTERVAL '7' DAY
    GROUP BY r.campaign_id, r.customer_id, r.outcome
),
per_campaign AS (
    SELECT campaign_id,
           count_if(outcome = 'sent') AS treated,
           count_if(outcome = 'sent' AND converted) AS treated_converted,
           count_if(outcome = 'held_out') AS control,
           count_if(outcome = 'held_out' AND converted) AS control_converted
    FROM per_customer
    GROUP BY campaign_id
)
SELECT campaign_id, treated, treated_converted,
       round(CAST(treated_converted AS double) / nullif(treated, 0), 6) AS treated_rate,
       control, control_converted,
       round(CAST(control_converted AS double) / nullif(control, 0), 6) AS control_rate,
       round(CAST(treated_converted AS double) / nullif(treated, 0)
             - CAST(control_converted AS double) / nullif(control, 0), 6) AS uplift
FROM per_campaign
ORDER BY campaign_id
