"""A publisher in a process of its own (it keeps sending while a test stalls the server's event
loop): prints its publication id, then the frames it has sent, until killed."""

from __future__ import annotations

import asyncio
import json
import os
import sys

from dutycall.client import SignallingClient, publish
from dutycall.conference import aiortc_compat
from dutycall.synthetic import EncodedColorTrack


async def main(url: str, room: str) -> None:
    aiortc_compat.set_host_addresses(["127.0.0.1"])
    cookies = json.loads(os.environ.get("DUTYCALL_TEST_COOKIES", "{}"))
    client = await SignallingClient(url, cookies=cookies).connect()
    await client.join(room, "remote-publisher")
    track = EncodedColorTrack((40, 160, 40))
    _, published = await publish(client, video=track)
    print(f"published {published['publication_id']}", flush=True)
    while True:
        print(f"sent {track.frames_sent}", flush=True)
        await asyncio.sleep(0.1)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:3]))
