-- ticklake catalog, version 1.
-- Timestamps are integers: microseconds since the Unix epoch, UTC.
-- A file is live in snapshot S when added_snapshot <= S and (removed_snapshot IS NULL or removed_snapshot > S).

CREATE TABLE datasets (
    dataset_id      INTEGER PRIMARY KEY,
    name            TEXT NOT NULL UNIQUE,
    location        TEXT NOT NULL,          -- folder relative to the lake root, e.g. 'lake/ticks'
    partition_keys  TEXT NOT NULL,          -- JSON list, outermost first
    time_column     TEXT NOT NULL,          -- the column whose min/max is files.ts_min/ts_max
    columns         TEXT NOT NULL,          -- JSON object: column -> DuckDB type, partition columns included
    indexed_columns TEXT NOT NULL,          -- JSON list: inverted index (value -> files)
    bloom_columns   TEXT NOT NULL,          -- JSON list: one Bloom filter per file and column
    created_at      TEXT NOT NULL
);

CREATE TABLE snapshots (
    snapshot_id  INTEGER PRIMARY KEY,
    parent_id    INTEGER REFERENCES snapshots (snapshot_id),
    committed_at TEXT NOT NULL,
    operation    TEXT NOT NULL,             -- 'compact', ...
    summary      TEXT NOT NULL              -- JSON: what the commit did, with counts
);

CREATE TABLE files (
    file_id          INTEGER PRIMARY KEY,
    dataset_id       INTEGER NOT NULL REFERENCES datasets (dataset_id),
    path             TEXT NOT NULL UNIQUE,  -- relative to the lake root
    partition_path   TEXT NOT NULL,         -- 'tick_type=last/date=2022-01-07/hour=05'
    partition_values TEXT NOT NULL,         -- JSON object
    rows             INTEGER NOT NULL,
    bytes            INTEGER NOT NULL,
    ts_min           INTEGER NOT NULL,
    ts_max           INTEGER NOT NULL,
    added_snapshot   INTEGER NOT NULL REFERENCES snapshots (snapshot_id),
    removed_snapshot INTEGER REFERENCES snapshots (snapshot_id)
);
CREATE INDEX files_by_time ON files (dataset_id, ts_min, ts_max);
CREATE INDEX files_by_partition ON files (dataset_id, partition_path);
CREATE INDEX files_removed ON files (removed_snapshot);

-- Min/max of numeric columns and of partition values, per file.
CREATE TABLE file_stats (
    file_id     INTEGER NOT NULL REFERENCES files (file_id),
    column_name TEXT NOT NULL,
    min_value   ANY,
    max_value   ANY,
    null_count  INTEGER NOT NULL,
    PRIMARY KEY (file_id, column_name)
) WITHOUT ROWID;

-- Inverted index: which files hold a value of an indexed column, and how many rows.
CREATE TABLE file_values (
    column_name TEXT NOT NULL,
    value       TEXT NOT NULL,
    file_id     INTEGER NOT NULL REFERENCES files (file_id),
    rows        INTEGER NOT NULL,
    PRIMARY KEY (column_name, value, file_id)
) WITHOUT ROWID;
CREATE INDEX file_values_by_file ON file_values (file_id);

-- Bloom filters: bits of a k-hash filter over the distinct values of a column in a file.
CREATE TABLE file_blooms (
    file_id     INTEGER NOT NULL REFERENCES files (file_id),
    column_name TEXT NOT NULL,
    num_bits    INTEGER NOT NULL,
    num_hashes  INTEGER NOT NULL,
    bits        BLOB NOT NULL,
    PRIMARY KEY (file_id, column_name)
) WITHOUT ROWID;

-- Landing segments consumed by a commit; a content hash is consumed at most once.
CREATE TABLE segments (
    segment_id        INTEGER PRIMARY KEY,
    dataset_id        INTEGER NOT NULL REFERENCES datasets (dataset_id),
    path              TEXT NOT NULL,        -- relative to the lake root, where it was sealed
    bytes             INTEGER NOT NULL,
    sha256            TEXT NOT NULL UNIQUE,
    hour              TEXT NOT NULL,        -- event hour, '2022-01-07T05'
    lines             INTEGER NOT NULL,
    rows_stored       INTEGER NOT NULL,
    rows_quarantined  INTEGER NOT NULL,
    consumed_snapshot INTEGER NOT NULL REFERENCES snapshots (snapshot_id)
);
CREATE INDEX segments_by_hour ON segments (dataset_id, hour);
CREATE INDEX segments_by_path ON segments (path);
