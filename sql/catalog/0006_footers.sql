-- ticklake catalog, version 6: the Parquet footers of cold objects.
-- A reader that holds an object's footer picks the row groups a query can need from their
-- statistics and fetches only their byte ranges (a ranged GET per run of them), with no
-- request for the footer first: one object's ticks of one contract are one small GET.
CREATE TABLE file_footers (
    file_id INTEGER PRIMARY KEY REFERENCES files (file_id),
    footer  BLOB NOT NULL  -- the file's last bytes: its FileMetaData, their 4-byte length, 'PAR1'
);
