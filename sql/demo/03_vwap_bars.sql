-- 1-minute VWAP bars of the most active contract's trades, first ten minutes of the session.
SELECT time_bucket(INTERVAL 1 MINUTE, timestamp) AS minute,
       count(*) AS trades, sum(size) AS volume,
       round(sum(price * size) / sum(size), 4) AS vwap, min(price) AS low, max(price) AS high
FROM ticks
WHERE tick_type = 'last' AND contract_id = $contract
  AND timestamp >= $session_start AND timestamp < $session_start + INTERVAL 10 MINUTE
GROUP BY minute
ORDER BY minute
