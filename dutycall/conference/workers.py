"""Media workers: subscribers' peer connections in other processes, one per core.

The control process (this one: HTTP, signalling, the database, the coordinators) keeps every
publisher's peer connection and forwarder. With ``media_workers`` > 0 a room places each new
subscription to a publication on the worker (``worker.py``) holding the fewest subscriptions:
the worker answers the subscriber's offer with a connection of its own, and the publication is
piped to that worker (``pipe.py``: encoded frames, nothing decoded) while it has subscribers
there. So a greeting's 1 → 300 fan-out, whose cost is almost all in sending (packetising,
SRTP, the sockets: ~N × the receiving cost), spans every core, while the control process
receives the leader once and writes two pipes.

In the control process a worker's subscription is a :class:`RemoteSubscription`: the room
keeps it, closes it and hears its end exactly as a local one (``on_close`` / ``on_ended``), so
nothing above the room knows where it lives. Floor subscriptions (a roll-call's switchable
tracks) stay in the control process for now.

Workers connect back to a Unix socket in a private temporary directory and prove themselves
with a token given in their environment; the same protocol runs over TCP (``tcp:host:port``),
which is how a worker on another machine would join. A worker that dies ends its subscriptions
(their subscribers are told ``subscription_closed``: the page subscribes again, to a live
worker) and is started again.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import secrets
import shutil
import sys
import tempfile
from typing import TYPE_CHECKING, Any

from . import errors as conference_errors
from .errors import ConferenceError, NotFound, SdpError
from .forwarding import TrackForwarder
from .lifecycle import CloseReason
from .pipe import PipeSender, json_message, read_message
from .sdp import Offer
from .subscription import OnSubscriptionEvent, Subscription

if TYPE_CHECKING:
    from .participant import Participant
    from .publication import Publication
    from .settings import ConferenceSettings

logger = logging.getLogger(__name__)

#: How long a worker may take to answer a request (an offer: ICE gathering included).
REQUEST_TIMEOUT = 20.0
#: How long a starting worker may take to connect back.
START_TIMEOUT = 30.0
#: Wait before starting again a worker that died.
RESTART_DELAY = 1.0


def _rebuild(shape: dict[str, Any]) -> ConferenceError:
    cls = getattr(conference_errors, str(shape.get("kind")), None)
    if not (isinstance(cls, type) and issubclass(cls, ConferenceError)):
        cls = SdpError
    return cls(str(shape.get("key", "sdp.negotiation")), **dict(shape.get("params") or {}))


class WorkerLink:
    """The control process's side of one worker's connection."""

    def __init__(self, index: int, pid: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.index = index
        self.pid = pid
        self._reader = reader
        self._writer = writer
        self.alive = True
        self.subscriptions: dict[str, RemoteSubscription] = {}
        #: Pipes by publication id, and the subscription ids each serves.
        self._pipes: dict[str, PipeSender] = {}
        self._pipe_users: dict[str, set[str]] = {}
        self._pipes_by_id: dict[int, PipeSender] = {}
        self._pipe_ids = itertools.count(1)
        self._requests = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        #: The last ``stats`` the worker sent (CPU seconds, subscriptions, frame counts).
        self.stats: dict[str, Any] = {}

    @property
    def load(self) -> int:
        return len(self.subscriptions)

    def send(self, message: dict[str, Any]) -> None:
        if self.alive and not self._writer.is_closing():
            self._writer.write(json_message(message))

    def _write(self, data: bytes) -> None:
        if self.alive and not self._writer.is_closing():
            self._writer.write(data)

    def _buffered(self) -> int:
        return self._writer.transport.get_write_buffer_size()

    async def request(self, message: dict[str, Any]) -> dict[str, Any]:
        if not self.alive:
            raise NotFound("conference.worker_gone")
        req = next(self._requests)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[req] = future
        self.send({**message, "req": req})
        try:
            return await asyncio.wait_for(future, REQUEST_TIMEOUT)
        except TimeoutError:
            raise SdpError("sdp.negotiation", detail="media worker did not answer") from None
        finally:
            self._pending.pop(req, None)

    # -- pipes ------------------------------------------------------------------------

    def attach(self, subscription: RemoteSubscription) -> PipeSender:
        """The pipe of ``subscription``'s publication to this worker, opened if needed."""
        publication = subscription.publication
        pipe = self._pipes.get(publication.id)
        if pipe is None:
            pipe_id = next(self._pipe_ids)
            codecs = {kind: publication.codec_name(kind) or "" for kind in publication.forwarders}
            self.send({"op": "pipe_open", "pipe": pipe_id, "publication": publication.id, "codecs": codecs})
            pipe = PipeSender(pipe_id, dict(publication.forwarders), self._write, self._buffered)
            self._pipes[publication.id] = pipe
            self._pipes_by_id[pipe_id] = pipe
            self._pipe_users[publication.id] = set()
        self._pipe_users[publication.id].add(subscription.id)
        self.subscriptions[subscription.id] = subscription
        return pipe

    def detach(self, subscription: RemoteSubscription, reason: CloseReason) -> None:
        """Forget ``subscription``; close it in the worker and the pipe once nobody uses it."""
        if self.subscriptions.pop(subscription.id, None) is None:
            return
        self.send({"op": "unsubscribe", "sub": subscription.id, "reason": str(reason)})
        publication_id = subscription.publication.id
        users = self._pipe_users.get(publication_id)
        if users is not None:
            users.discard(subscription.id)
            if not users:
                self._close_pipe(publication_id)

    def _close_pipe(self, publication_id: str) -> None:
        pipe = self._pipes.pop(publication_id, None)
        self._pipe_users.pop(publication_id, None)
        if pipe is not None:
            self._pipes_by_id.pop(pipe.id, None)
            pipe.close()
            self.send({"op": "pipe_close", "pipe": pipe.id})

    # -- the worker's messages --------------------------------------------------------

    async def run(self) -> None:
        """Read the worker's messages until its connection ends; then end what it held."""
        try:
            while True:
                kind, body = await read_message(self._reader)
                if kind == "J":
                    message = json.loads(body)
                    if not isinstance(message, dict):
                        raise ValueError("not a JSON object")
                    self._handle(message)
        except (asyncio.IncompleteReadError, ConnectionError, ValueError, TypeError, AttributeError) as exc:
            if self.alive:
                logger.warning("media worker %d (pid %d): connection ended (%s)", self.index, self.pid,
                               type(exc).__name__)
        finally:
            self._gone()

    def _handle(self, message: dict[str, Any]) -> None:
        op = message.get("op")
        if op == "reply":
            future = self._pending.get(int(message.get("req", 0)))
            if future is not None and not future.done():
                future.set_result(message)
        elif op == "keyframe":
            pipe = self._pipes_by_id.get(int(message.get("pipe", 0)))
            if pipe is not None:
                pipe.request_keyframe()
        elif op == "ended":
            subscription = self.subscriptions.get(str(message.get("sub")))
            if subscription is not None:
                try:
                    reason = CloseReason(str(message.get("reason")))
                except ValueError:
                    reason = CloseReason.PEER_FAILED
                subscription.ended_in_worker(reason)
        elif op == "stats":
            self.stats = message

    def _gone(self) -> None:
        """The worker is gone (or spoke nonsense): its subscriptions end (their rooms close them
        and tell the subscribers), its pipes stop, and its connection is closed, so a worker still
        running exits and is started again."""
        self.alive = False
        self._writer.close()
        for future in self._pending.values():
            if not future.done():
                future.set_exception(NotFound("conference.worker_gone"))
        for publication_id in tuple(self._pipes):
            pipe = self._pipes.pop(publication_id)
            pipe.close()
        self._pipe_users.clear()
        self._pipes_by_id.clear()
        for subscription in tuple(self.subscriptions.values()):
            subscription.ended_in_worker(CloseReason.PEER_FAILED)

    def close(self) -> None:
        self.alive = False
        self._writer.close()


class MediaWorkers:
    """Starts ``count`` worker processes, keeps them running, and places subscriptions."""

    def __init__(self, count: int, settings: ConferenceSettings) -> None:
        self.count = count
        self.settings = settings
        self.links: dict[int, WorkerLink] = {}
        self._token = secrets.token_hex(32)
        self._dir: str | None = None
        self._server: asyncio.AbstractServer | None = None
        self._processes: dict[int, asyncio.subprocess.Process] = {}
        self._supervisors: list[asyncio.Task[None]] = []
        self._readers: set[asyncio.Task[None]] = set()
        self._connected: dict[int, asyncio.Event] = {}
        self._closing = False
        self.restarts = 0

    @property
    def address(self) -> str:
        assert self._dir is not None
        return f"unix:{os.path.join(self._dir, 'control.sock')}"

    async def start(self) -> None:
        """Start every worker and wait until each has connected (RuntimeError if one does not)."""
        self._dir = tempfile.mkdtemp(prefix="dutycall-media-")
        self._server = await asyncio.start_unix_server(self._accept, self.address.partition(":")[2])
        for index in range(self.count):
            self._connected[index] = asyncio.Event()
            self._supervisors.append(asyncio.ensure_future(self._supervise(index)))
        try:
            await asyncio.wait_for(asyncio.gather(*(e.wait() for e in self._connected.values())), START_TIMEOUT)
        except TimeoutError:
            await self.close()
            raise RuntimeError(f"media workers did not start within {START_TIMEOUT:.0f} s") from None
        logger.info("media workers: %s", ", ".join(f"{link.index} (pid {link.pid})" for link in self.links.values()))

    async def _spawn(self, index: int) -> asyncio.subprocess.Process:
        env = dict(os.environ)
        env["DUTYCALL_WORKER_TOKEN"] = self._token
        env["DUTYCALL_WORKER_ICE"] = json.dumps({"addresses": self.settings.ice_addresses,
                                                 "servers": self.settings.ice_servers})
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "dutycall.conference.worker", "--connect", self.address, "--index", str(index),
            "--log-level", logging.getLevelName(logging.getLogger().getEffectiveLevel()), env=env)

    async def _supervise(self, index: int) -> None:
        """Run worker ``index``; start it again whenever it exits, until the workers close."""
        while not self._closing:
            process = await self._spawn(index)
            self._processes[index] = process
            code = await process.wait()
            if self._closing:
                return
            self.restarts += 1
            logger.error("media worker %d (pid %d) exited with %s; starting it again", index, process.pid, code)
            link = self.links.pop(index, None)
            if link is not None:
                link.close()
                link._gone()
            await asyncio.sleep(RESTART_DELAY)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            kind, body = await asyncio.wait_for(read_message(reader), 10.0)
            hello = json.loads(body) if kind == "J" else {}
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError, ValueError):
            writer.close()
            return
        if hello.get("op") != "hello" or not secrets.compare_digest(str(hello.get("token", "")), self._token):
            logger.warning("media workers: a connection without the token was refused")
            writer.close()
            return
        index = int(hello.get("index", -1))
        if index not in self._connected or self._closing:
            writer.close()
            return
        link = WorkerLink(index, int(hello.get("pid", 0)), reader, writer)
        old = self.links.get(index)
        if old is not None:
            old.close()
        self.links[index] = link
        self._connected[index].set()
        task = asyncio.ensure_future(link.run())
        self._readers.add(task)
        task.add_done_callback(self._readers.discard)

    def place(self, publication: Publication) -> WorkerLink | None:
        """The live worker with the fewest subscriptions; None: subscribe in this process."""
        if self._closing or not all(isinstance(f, TrackForwarder) for f in publication.forwarders.values()):
            return None
        links = [link for link in self.links.values() if link.alive]
        return min(links, key=lambda link: (link.load, link.index)) if links else None

    def worker_stats(self) -> list[dict[str, Any]]:
        """Per worker: index, pid, subscriptions, and its last reported CPU seconds and frames."""
        return [{"index": link.index, "pid": link.pid, "subscriptions": link.load,
                 "cpu_seconds": float(link.stats.get("cpu_seconds", 0.0)),
                 "frames_forwarded": int(link.stats.get("frames_forwarded", 0)),
                 "frames_dropped": int(link.stats.get("frames_dropped", 0)),
                 "frames_stale": int(link.stats.get("frames_stale", 0))}
                for link in sorted(self.links.values(), key=lambda link: link.index)]

    async def close(self) -> None:
        """Stop every worker (they exit when their connection closes) and wait for them."""
        self._closing = True
        for link in tuple(self.links.values()):
            link.close()
        for process in self._processes.values():
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.terminate()
        for process in self._processes.values():
            try:
                await asyncio.wait_for(process.wait(), 5.0)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        for task in self._supervisors:
            task.cancel()
        await asyncio.gather(*self._supervisors, *self._readers, return_exceptions=True)
        if self._server is not None:
            self._server.close()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)


class RemoteSubscription(Subscription):
    """A subscription whose peer connection lives in a media worker."""

    def __init__(self, id: str, participant: Participant, publication: Publication, link: WorkerLink,
                 on_close: OnSubscriptionEvent | None = None, on_ended: OnSubscriptionEvent | None = None) -> None:
        # No local peer connection (BaseSubscription would make one): it is the worker's.
        self.id = id
        self.participant = participant
        self.publication = publication
        self.link = link
        self.tracks = []
        self.closed = False
        self.close_reason: CloseReason | None = None
        self._on_close = on_close
        self._on_ended = on_ended
        self._attached = False

    async def negotiate(self, offer: Offer) -> str:
        self._check_kinds(offer)
        pipe = self.link.attach(self)
        self._attached = True
        try:
            reply = await self.link.request({"op": "subscribe", "sub": self.id, "pipe": pipe.id, "sdp": offer.sdp})
        except ConferenceError:
            self._detach(CloseReason.CLOSED)
            raise
        if "error" in reply:
            self._detach(CloseReason.CLOSED)
            raise _rebuild(reply["error"])
        return str(reply["sdp"])

    def _detach(self, reason: CloseReason) -> None:
        if self._attached:
            self._attached = False
            self.link.detach(self, reason)

    def ended_in_worker(self, reason: CloseReason) -> None:
        """The worker's connection died (or the worker did): tell the room, which closes us."""
        self._detach(reason)
        self._ended(reason)

    async def close(self, reason: CloseReason = CloseReason.CLOSED) -> None:
        if self.closed:
            return
        self.closed = True
        self.close_reason = reason
        self._on_ended = None
        callback, self._on_close = self._on_close, None
        if callback is not None:
            try:
                callback(self, reason)
            except Exception:
                logger.exception("subscription %s: on_close failed", self.id)
        self._detach(reason)

