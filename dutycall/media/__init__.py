"""Recording and archive, snapshots, presence checks, the wall, ingest (not built yet).

Uses `dutycall.conference`; never the other way round.
"""
