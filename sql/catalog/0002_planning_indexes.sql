-- Planning that stays fast with 100,000s of files.
-- The longest time span of any file of a dataset, kept up to date by every commit.
-- Time-range pruning turns "ts_max >= :from" into an index range on ts_min
-- ("ts_min >= :from - max_file_span"), so planning stays fast with 100,000s of files.
ALTER TABLE datasets ADD COLUMN max_file_span INTEGER NOT NULL DEFAULT 0;

UPDATE datasets SET max_file_span = coalesce(
    (SELECT max(ts_max - ts_min) FROM files WHERE files.dataset_id = datasets.dataset_id), 0);

-- Counting the live files of the newest snapshot reads this index only.
CREATE INDEX files_live ON files (dataset_id, removed_snapshot, added_snapshot);

-- Live files per dataset after each commit that changed it, so planning never counts 100,000s of
-- rows; a snapshot older than the first row here is counted the slow way.
CREATE TABLE dataset_snapshots (
    snapshot_id INTEGER NOT NULL REFERENCES snapshots (snapshot_id),
    dataset_id  INTEGER NOT NULL REFERENCES datasets (dataset_id),
    live_files  INTEGER NOT NULL,
    PRIMARY KEY (dataset_id, snapshot_id)
) WITHOUT ROWID;

INSERT INTO dataset_snapshots (snapshot_id, dataset_id, live_files)
SELECT (SELECT max(snapshot_id) FROM snapshots), dataset_id, count(*)
FROM files WHERE removed_snapshot IS NULL AND (SELECT max(snapshot_id) FROM snapshots) IS NOT NULL
GROUP BY dataset_id;
