-- The same contract's first ten minutes from the bars_1m dataset (what the hourly pipeline builds), pruned by the catalog like ticks.
SELECT minute, open, high, low, close, volume, round(vwap, 4) AS vwap, trades
FROM bars_1m
WHERE contract_id = $contract
  AND minute >= $session_start AND minute < $session_start + INTERVAL 10 MINUTE
ORDER BY minute
