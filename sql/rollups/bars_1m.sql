-- 1-minute bars per contract from the trades (tick_type 'last') of one event hour.
-- $files: the trade files that hold the hour, as the catalog lists them (never empty): hourly
-- files, and archived day objects (which hold other hours too, hence the time window), read by
-- column name. $hour_start, $hour_end: the event hour's bounds.
-- open and close are the first and last price by timestamp; trades with the same timestamp keep
-- the order of the file, which compaction's stable sort made arrival order. Missing sizes count
-- as a trade but add no volume; vwap is NULL when a minute's trades carry no size at all.
SELECT time_bucket(INTERVAL 1 MINUTE, timestamp) AS minute,
       contract_id,
       first(price ORDER BY timestamp, filename, file_row_number) AS open,
       max(price) AS high,
       min(price) AS low,
       last(price ORDER BY timestamp, filename, file_row_number) AS close,
       sum(size) AS volume,
       sum(price * size) / nullif(sum(size), 0) AS vwap,
       count(*) AS trades
FROM read_parquet($files, filename = true, file_row_number = true, union_by_name = true)
WHERE timestamp >= $hour_start AND timestamp < $hour_end
GROUP BY ALL
ORDER BY contract_id, minute
