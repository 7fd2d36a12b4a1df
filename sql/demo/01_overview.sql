-- Rows, contracts and exchanges per tick type over the whole lake (reads every file).
SELECT tick_type, count(*) AS ticks, count(DISTINCT contract_id) AS contracts, count(DISTINCT exchange) AS exchanges,
       min(timestamp) AS first_tick, max(timestamp) AS last_tick
FROM ticks
GROUP BY tick_type
ORDER BY ticks DESC
