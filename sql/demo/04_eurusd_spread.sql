-- Real EUR/USD quotes: quote count and average spread in pips per hour (symbol pruned by Bloom filter).
SELECT hour, count(*) AS quotes, round(avg(ask_price - bid_price) * 10000, 3) AS avg_spread_pips,
       min(bid_price) AS low_bid, max(ask_price) AS high_ask
FROM ticks
WHERE symbol = 'EUR.USD' AND date = DATE '2020-01-01'
GROUP BY hour
ORDER BY hour
