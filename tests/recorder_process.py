"""A recording server in a process of its own, so a test can kill it with SIGKILL mid-segment.

It reads the publisher's SDP offer (one JSON line on stdin), answers it from a real conference
room (one JSON line on stdout), archives the publication, and then prints every 50 ms how far
the archive got: the source id, packets written, and when the first of them had arrived
(``time.monotonic()``, which is the same clock in every process of the machine).
"""

from __future__ import annotations

import asyncio
import json
import pathlib
import sys

from dutycall import db
from dutycall.conference import Conference, ConferenceSettings, aiortc_compat
from dutycall.conference.sdp import parse_offer
from dutycall.media.recording import Archive, RecordingSettings


async def main(database_url: str, directory: str, incident_id: str, segment_seconds: str) -> None:
    aiortc_compat.set_host_addresses(["127.0.0.1"])
    loop = asyncio.get_running_loop()
    conference = Conference(ConferenceSettings(ice_addresses=["127.0.0.1"]))
    room = conference.room("footage-kill-test")
    participant = room.join("camera", lambda message: None)
    offer = json.loads(await loop.run_in_executor(None, sys.stdin.readline))["sdp"]
    publication, answer = await room.publish(participant, parse_offer(offer, "publish"), "camera", None)
    print(json.dumps({"answer": answer}), flush=True)
    sessionmaker = db.make_sessionmaker(db.make_engine(database_url))
    archive = Archive(sessionmaker, RecordingSettings(pathlib.Path(directory), float(segment_seconds), 0))
    source_id = await archive.new_source(int(incident_id), "test", "kill -9", room.name)
    recorder = await archive.start(publication, source_id, int(incident_id))
    while True:
        print(json.dumps({"source_id": source_id, "written": recorder.writer.written,
                          "first_at": recorder.writer.first_written_at}), flush=True)
        await asyncio.sleep(0.05)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
