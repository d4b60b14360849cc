"""A media worker process: subscribers' peer connections, fed by pipes from the control process.

Started by :class:`~dutycall.conference.workers.MediaWorkers` as ``python -m
dutycall.conference.worker --connect unix:PATH --index N``; it connects back, says who it is
(the token the control process put in its environment), and then obeys JSON requests:

- ``pipe_open`` {pipe, publication, codecs}: a :class:`PipedPublication` fed by ``M`` frames;
- ``pipe_close`` {pipe};
- ``subscribe`` {req, sub, pipe, sdp} → ``reply`` {req, sdp} or {req, error: {kind, key, params}}:
  a :class:`Subscription` (the same class the control process uses) on the piped publication;
- ``unsubscribe`` {sub, reason}.

It sends ``keyframe`` {pipe} when a subscriber needs one, ``ended`` {sub, reason} when a
subscriber's connection dies by itself, and ``stats`` every second (CPU seconds, subscriptions,
frames forwarded/dropped/stale). It exits when the control connection closes: a control process
that dies, even by SIGKILL, leaves no worker behind.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import time
from typing import Any

from .. import memory
from . import aiortc_compat
from .errors import ConferenceError
from .lifecycle import CloseReason
from .pipe import PipedPublication, json_message, parse_media, read_message
from .sdp import parse_offer
from .settings import ConferenceSettings
from .subscription import BaseSubscription, Subscription

logger = logging.getLogger("dutycall.worker")


def error_shape(exc: ConferenceError) -> dict[str, Any]:
    """A conference error as JSON: rebuilt on the other side with its class and message."""
    return {"kind": type(exc).__name__, "key": exc.msg.key,
            "params": {k: str(v) for k, v in exc.msg.params.items()}}


class Worker:
    def __init__(self, writer: asyncio.StreamWriter, settings: ConferenceSettings) -> None:
        self._writer = writer
        self.settings = settings
        self.pipes: dict[int, PipedPublication] = {}
        self.subscriptions: dict[str, BaseSubscription] = {}
        self._cancelled: set[str] = set()
        #: Subscriptions being negotiated (an unsubscribe meanwhile is remembered in _cancelled).
        self._negotiating: set[str] = set()
        self._tasks: set[asyncio.Task[Any]] = set()

    def send(self, message: dict[str, Any]) -> None:
        if not self._writer.is_closing():
            self._writer.write(json_message(message))

    def media(self, body: bytes) -> None:
        pipe_id, kind, packet, sequence = parse_media(body)
        publication = self.pipes.get(pipe_id)
        if publication is not None:
            publication.feed(kind, packet, sequence)

    def control(self, message: dict[str, Any]) -> None:
        op = message.get("op")
        if op == "pipe_open":
            pipe_id = int(message["pipe"])
            self.pipes[pipe_id] = PipedPublication(
                pipe_id, str(message["publication"]), dict(message["codecs"]),
                ask_keyframe=lambda: self.send({"op": "keyframe", "pipe": pipe_id}))
        elif op == "pipe_close":
            publication = self.pipes.pop(int(message["pipe"]), None)
            if publication is not None:
                self._spawn(publication.close())
        elif op == "subscribe":
            self._spawn(self._subscribe(message))
        elif op == "unsubscribe":
            sub_id = str(message["sub"])
            subscription = self.subscriptions.pop(sub_id, None)
            if subscription is None and sub_id in self._negotiating:
                self._cancelled.add(sub_id)  # still negotiating: closed when that ends
            elif subscription is None:
                pass  # already ended here (the control process heard ``ended``)
            else:
                self._spawn(subscription.close(CloseReason(message.get("reason", "closed"))))
        else:
            logger.warning("worker: unknown request %r", op)

    def _spawn(self, work: Any) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _subscribe(self, message: dict[str, Any]) -> None:
        req, sub_id = message["req"], str(message["sub"])
        publication = self.pipes.get(int(message["pipe"]))
        if publication is None:
            self.send({"op": "reply", "req": req,
                       "error": {"kind": "NotFound", "key": "conference.publication_closed",
                                 "params": {"id": str(message.get("pipe"))}}})
            return
        subscription = Subscription(sub_id, None, publication, self.settings,  # type: ignore[arg-type]
                                    on_ended=self._ended)
        self._negotiating.add(sub_id)
        try:
            sdp = await subscription.negotiate(parse_offer(message.get("sdp"), "subscribe"))
        except ConferenceError as exc:
            self._cancelled.discard(sub_id)
            self.send({"op": "reply", "req": req, "error": error_shape(exc)})
            return
        except Exception as exc:  # never leave the control process waiting
            logger.exception("worker: subscribe %s failed", sub_id)
            self._cancelled.discard(sub_id)
            self.send({"op": "reply", "req": req,
                       "error": {"kind": "SdpError", "key": "sdp.negotiation", "params": {"detail": str(exc)}}})
            await subscription.close()
            return
        finally:
            self._negotiating.discard(sub_id)
        if sub_id in self._cancelled or publication.closed:
            self._cancelled.discard(sub_id)
            await subscription.close()
        else:
            self.subscriptions[sub_id] = subscription
        self.send({"op": "reply", "req": req, "sdp": sdp})

    def _ended(self, subscription: BaseSubscription, reason: CloseReason) -> None:
        if self.subscriptions.pop(subscription.id, None) is not None:
            self.send({"op": "ended", "sub": subscription.id, "reason": str(reason)})
            self._spawn(subscription.close(reason))

    def stats(self) -> dict[str, Any]:
        forwarded = dropped = stale = 0
        for subscription in self.subscriptions.values():
            for track in subscription.tracks:
                forwarded += getattr(track, "frames_forwarded", 0)
                dropped += getattr(track, "frames_dropped", 0)
                stale += getattr(track, "frames_stale", 0)
        return {"op": "stats", "cpu_seconds": time.process_time(), "subscriptions": len(self.subscriptions),
                "pipes": len(self.pipes), "frames_forwarded": forwarded, "frames_dropped": dropped,
                "frames_stale": stale}

    async def close(self) -> None:
        for subscription in tuple(self.subscriptions.values()):
            await subscription.close(CloseReason.ROOM_CLOSED)
        self.subscriptions.clear()
        for publication in tuple(self.pipes.values()):
            await publication.close()
        self.pipes.clear()
        for task in tuple(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def _connect(address: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    scheme, _, rest = address.partition(":")
    if scheme == "unix":
        return await asyncio.open_unix_connection(rest)
    if scheme == "tcp":
        host, _, port = rest.rpartition(":")
        return await asyncio.open_connection(host.strip("[]"), int(port))
    raise ValueError(f"unknown control address {address!r}")


async def serve(address: str, index: int, token: str, settings: ConferenceSettings) -> None:
    reader, writer = await _connect(address)
    worker = Worker(writer, settings)
    worker.send({"op": "hello", "token": token, "index": index, "pid": os.getpid()})
    memory.freeze_startup_objects()  # see dutycall.memory: no full-collection pauses over them

    async def report() -> None:
        while True:
            await asyncio.sleep(1.0)
            worker.send(worker.stats())

    reporter = asyncio.ensure_future(report())
    try:
        while True:
            kind, body = await read_message(reader)
            if kind == "M":
                worker.media(body)
            elif kind == "J":
                worker.control(json.loads(body))
    except (asyncio.IncompleteReadError, ConnectionError):
        logger.info("worker %d: the control process is gone; exiting", index)
    finally:
        reporter.cancel()
        await worker.close()
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


def main() -> None:
    parser = argparse.ArgumentParser(description="dutycall media worker (started by the server)")
    parser.add_argument("--connect", required=True)
    parser.add_argument("--index", type=int, default=0)
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args()
    logging.basicConfig(level=args.log_level,
                        format=f"%(asctime)s worker{args.index} %(levelname)s %(name)s: %(message)s")
    token = os.environ.pop("DUTYCALL_WORKER_TOKEN", "")
    ice = json.loads(os.environ.get("DUTYCALL_WORKER_ICE", "{}") or "{}")
    settings = ConferenceSettings(ice_addresses=list(ice.get("addresses") or []),
                                  ice_servers=list(ice.get("servers") or []))
    aiortc_compat.install()
    if settings.ice_addresses:
        aiortc_compat.set_host_addresses(settings.ice_addresses)
    asyncio.run(serve(args.connect, args.index, token, settings))


if __name__ == "__main__":
    main()
