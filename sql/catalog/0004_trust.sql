-- Trust: segments known by name, data files with checksums, snapshots that vacuum expires.

-- A landing segment is known by its path (writer and sequence, in its hour folder); its content
-- hash guards against a changed segment under a consumed name. Equal content under two names is
-- two deliveries of real ticks, so the hash is no longer unique.
CREATE TABLE segments_v4 (
    segment_id        INTEGER PRIMARY KEY,
    dataset_id        INTEGER NOT NULL REFERENCES datasets (dataset_id),
    path              TEXT NOT NULL,        -- relative to the lake root, where it was sealed; its identity
    bytes             INTEGER NOT NULL,
    sha256            TEXT NOT NULL,        -- of its content when consumed
    hour              TEXT NOT NULL,        -- event hour, '2022-01-07T05'
    lines             INTEGER NOT NULL,
    rows_stored       INTEGER NOT NULL,
    rows_quarantined  INTEGER NOT NULL,
    consumed_snapshot INTEGER NOT NULL REFERENCES snapshots (snapshot_id)
);
INSERT INTO segments_v4 SELECT segment_id, dataset_id, path, bytes, sha256, hour, lines, rows_stored,
    rows_quarantined, consumed_snapshot FROM segments;
DROP TABLE segments;
ALTER TABLE segments_v4 RENAME TO segments;
CREATE INDEX segments_by_hour ON segments (dataset_id, hour);
CREATE INDEX segments_by_path ON segments (path);
CREATE INDEX segments_by_sha256 ON segments (sha256);

-- SHA-256 of each data file as written (NULL for files written before this migration), so
-- `ticklake check` finds a file that changed after its commit.
ALTER TABLE files ADD COLUMN sha256 TEXT;

-- When `ticklake vacuum` deleted files an old snapshot needs, the snapshot is expired: it is
-- listed still, but can no longer be read.
ALTER TABLE snapshots ADD COLUMN expired_at TEXT;
