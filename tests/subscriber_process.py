"""A subscriber in a process of its own (so a test can freeze it): prints frames received."""

from __future__ import annotations

import asyncio
import json
import os
import sys

from dutycall.client import SignallingClient, subscribe
from dutycall.conference import aiortc_compat


async def main(url: str, room: str, publication_id: str) -> None:
    aiortc_compat.set_host_addresses(["127.0.0.1"])
    cookies = json.loads(os.environ.get("DUTYCALL_TEST_COOKIES", "{}"))
    client = await SignallingClient(url, cookies=cookies).connect()
    await client.join(room, "frozen-subscriber")
    pc, _, tracks = await subscribe(client, publication_id, passthrough=True)
    frames = 0

    async def read() -> None:
        nonlocal frames
        while True:
            await tracks["video"].recv()
            frames += 1

    reader = asyncio.ensure_future(read())
    while not reader.done():
        print(f"frames {frames}", flush=True)
        await asyncio.sleep(0.1)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
