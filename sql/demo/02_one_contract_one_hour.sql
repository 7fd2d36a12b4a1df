-- One rare contract, one hour: the catalog hands DuckDB only the files that can hold it.
SELECT tick_type, count(*) AS ticks, min(timestamp) AS first_tick, max(timestamp) AS last_tick,
       round(avg(coalesce(price, (bid_price + ask_price) / 2)), 4) AS avg_price
FROM ticks
WHERE contract_id = $contract
  AND timestamp >= $hour_start AND timestamp < $hour_start + INTERVAL 1 HOUR
GROUP BY tick_type
ORDER BY tick_type
