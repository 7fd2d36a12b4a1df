-- ticklake catalog, version 5: files that span several event hours (an archived day).
-- A file's path is relative to the lake root (warm, local disk) or a full object URI (cold,
-- 's3://bucket/prefix/...'); credentials are never part of it.

-- Rows per event hour ('2022-01-07T05') of a file whose partition holds no hour: the per-hour
-- reconciliation (lines in = rows stored + rows quarantined) still holds after an archive.
CREATE TABLE file_hours (
    file_id INTEGER NOT NULL REFERENCES files (file_id),
    hour    TEXT NOT NULL,
    rows    INTEGER NOT NULL,
    PRIMARY KEY (file_id, hour)
) WITHOUT ROWID;
CREATE INDEX file_hours_by_hour ON file_hours (hour);
