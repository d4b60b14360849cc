"""Media beyond forwarding: attendance evidence (snapshots, face presence, liveness, looped
recordings); incident footage: the archive (``recording.py``), WHIP ingest (``ingest.py``) and
the footage rooms (``naming.py``); RTSP pull, relay, playback and the wall are next.

Uses `dutycall.conference` through its public names only; never the other way round.
"""
