-- Screen-to-screen transitions within sessions (consecutive screen views, A -> B with A <> B),
-- for a Sankey diagram: source, target, sessions' transitions.
SELECT source, target, count(*) AS transitions
FROM (
    SELECT s.screens[i] AS source, s.screens[i + 1] AS target
    FROM {sessions} AS s
    CROSS JOIN UNNEST(sequence(1, greatest(cardinality(s.screens) - 1, 1))) AS t (i)
    WHERE cardinality(s.screens) >= 2
)
WHERE source <> target
GROUP BY source, target
ORDER BY transitions DESC, source, target
