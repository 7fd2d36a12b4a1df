"""Keeping a lake trustworthy: `check` finds damage, `repair` fixes what is safe, `vacuum` deletes
what no readable snapshot needs, `rebuild` recreates a lost catalog from the data files, and
`pins` keep vacuum away from the snapshots open readers use."""
