"""Media beyond forwarding: attendance evidence today (snapshots, face presence, liveness,
looped recordings); recording and the archive, the wall and ingest are next.

Uses `dutycall.conference` through its public names only; never the other way round.
"""
