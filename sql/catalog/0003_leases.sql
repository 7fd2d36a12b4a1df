-- Leases: one holder at a time per name (e.g. 'ticks/2022-01-07T05'), so two workers never
-- rebuild the same partition at once. A lease lapses at expires_at (Unix seconds) unless its
-- holder renews it, so a holder that crashed blocks others for one TTL at most.
CREATE TABLE leases (
    name        TEXT PRIMARY KEY,
    owner       TEXT NOT NULL,          -- who holds it, for messages (a run id, host-pid, ...)
    token       TEXT NOT NULL,          -- unique per holding: two holders with one owner name still exclude each other
    acquired_at TEXT NOT NULL,
    expires_at  REAL NOT NULL
) WITHOUT ROWID;
