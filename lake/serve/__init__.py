"""`ticklake serve`: the lake over the network, Arrow Flight SQL for queries and InfluxDB line protocol for ingest.

One process holds both endpoints (`ticklake.serve.server`); both admit a request by its bearer
token (`ticklake.serve.tokens`); queries run on read-only, confined lake connections
(`ticklake.query.safety`) within the limits of `ticklake.serve.settings`.
"""
