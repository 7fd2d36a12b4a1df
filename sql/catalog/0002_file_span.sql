-- The longest time span of any file of a dataset, kept up to date by every commit.
-- Time-range pruning turns "ts_max >= :from" into an index range on ts_min
-- ("ts_min >= :from - max_file_span"), so planning stays fast with 100,000s of files.
ALTER TABLE datasets ADD COLUMN max_file_span INTEGER NOT NULL DEFAULT 0;

UPDATE datasets SET max_file_span = coalesce(
    (SELECT max(ts_max - ts_min) FROM files WHERE files.dataset_id = datasets.dataset_id), 0);

-- Counting the live files of the newest snapshot reads this index only.
CREATE INDEX files_live ON files (dataset_id, removed_snapshot, added_snapshot);
