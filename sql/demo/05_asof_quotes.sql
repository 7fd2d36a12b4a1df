-- Each trade of the most active contract with the quote in force at that moment (ASOF join);
-- both sides of the join are pruned by their own predicates.
SELECT t.timestamp, t.price, t.size, q.bid_price, q.ask_price,
       CASE WHEN t.price >= q.ask_price THEN 'buy' WHEN t.price <= q.bid_price THEN 'sell' ELSE 'mid' END AS side
FROM (SELECT * FROM ticks WHERE contract_id = $contract AND tick_type = 'last') t
ASOF JOIN (SELECT * FROM ticks WHERE contract_id = $contract AND tick_type = 'bid_ask') q
  ON t.timestamp >= q.timestamp
ORDER BY t.timestamp
LIMIT 8
