"""The packet path in isolation: keyframe gating, bounded queues, throttled keyframe requests."""

from __future__ import annotations

import asyncio
import time

import av
from aiortc import MediaStreamTrack

from dutycall.conference.aiortc_compat import is_keyframe
from dutycall.conference.forwarding import TrackForwarder

from .utils import wait_for


class QueueTrack(MediaStreamTrack):
    """An in-memory source: whatever the test puts in comes out of recv()."""

    kind = "video"

    def __init__(self) -> None:
        super().__init__()
        self.queue: asyncio.Queue = asyncio.Queue()

    async def recv(self):
        return await self.queue.get()


class CountingForwarder(TrackForwarder):
    def __init__(self, track) -> None:
        super().__init__(track, receiver=object(), keyframe_interval=0.2)  # type: ignore[arg-type]
        self.sent_requests = 0

    def _send_keyframe_request(self) -> None:
        self._pending_keyframe = None
        self._last_keyframe_request = time.monotonic()
        self.sent_requests += 1


def packet(n: int, key: bool) -> av.Packet:
    p = av.Packet(bytes([0 if key else 1]) + n.to_bytes(4, "big"))
    p.pts = n * 3000
    p.is_keyframe = key
    return p


def test_vp8_and_h264_keyframe_detection():
    assert is_keyframe("VP8", b"\x10\x02\x00")  # frame tag bit 0 clear
    assert not is_keyframe("VP8", b"\x31\x02\x00")
    assert is_keyframe("H264", b"\x00\x00\x00\x01\x67\x42" + b"\x00\x00\x00\x01\x68\xce" + b"\x00\x00\x00\x01\x65\x88")
    assert not is_keyframe("H264", b"\x00\x00\x00\x01\x41\x9a")
    assert not is_keyframe("VP8", b"")


async def test_new_subscriber_starts_at_a_keyframe():
    source = QueueTrack()
    forwarder = CountingForwarder(source)
    forwarder.start()
    sub = forwarder.subscribe()
    assert forwarder.sent_requests == 1  # a keyframe was asked for at once
    for n, key in enumerate([False, False, True, False]):
        await source.queue.put(packet(n, key))
    first = await asyncio.wait_for(sub.recv(), 5)
    assert first.is_keyframe and first.pts == 2 * 3000
    assert (await asyncio.wait_for(sub.recv(), 5)).pts == 3 * 3000
    assert sub.frames_dropped == 2
    await forwarder.stop()


async def test_slow_subscriber_is_dropped_to_next_keyframe_without_stalling_others():
    source = QueueTrack()
    forwarder = CountingForwarder(source)
    forwarder.start()
    fast = forwarder.subscribe()
    slow = forwarder.subscribe()
    received = []

    async def read_fast():
        while True:
            received.append(await fast.recv())

    reader = asyncio.ensure_future(read_fast())
    total = 330  # keyframes at 0, 100, 200, 300
    for n in range(total):
        await source.queue.put(packet(n, key=(n % 100 == 0)))
        # A live source delivers a frame at a time: let the fast reader keep up.
        for _ in range(4):
            await asyncio.sleep(0)
    await wait_for(lambda: len(received) == total, timeout=10, what="fast subscriber got everything")
    # The slow one never read: its queue stayed bounded and it overflowed.
    assert len(slow._queue) <= slow._max_queue
    assert slow.overflows >= 1
    # After an overflow the slow subscriber restarts exactly at a keyframe.
    first = await asyncio.wait_for(slow.recv(), 5)
    assert first.is_keyframe
    # Requests made during the throttle window were coalesced.
    requests = forwarder.sent_requests
    for _ in range(20):
        forwarder.request_keyframe()
    await asyncio.sleep(0)
    assert forwarder.sent_requests <= requests + 1
    await wait_for(lambda: forwarder.sent_requests <= requests + 2 and forwarder._pending_keyframe is None, timeout=5)
    reader.cancel()
    await forwarder.stop()
    assert fast.readyState == "ended" and slow.readyState == "ended"


async def test_stopped_subscriber_track_ends_its_reader():
    source = QueueTrack()
    forwarder = CountingForwarder(source)
    forwarder.start()
    sub = forwarder.subscribe()
    waiter = asyncio.ensure_future(sub.recv())
    await asyncio.sleep(0)
    sub.stop()
    from aiortc.mediastreams import MediaStreamError

    try:
        await asyncio.wait_for(waiter, 5)
    except MediaStreamError:
        pass
    else:
        raise AssertionError("recv() should raise once the track is stopped")
    assert forwarder.subscriber_count == 0
    await forwarder.stop()
    await forwarder.stop()  # idempotent


async def test_switchable_track_moves_between_sources_at_keyframes_with_continuous_timestamps():
    from dutycall.conference.forwarding import SwitchableTrack

    first, second = QueueTrack(), QueueTrack()
    a, b = CountingForwarder(first), CountingForwarder(second)
    a.start()
    b.start()
    floor = SwitchableTrack("video")
    floor.switch(a)
    assert a.subscriber_count == 1 and a.sent_requests == 1
    for n, key in ((100, True), (101, False)):
        await first.queue.put(packet(n, key))
    out = [await asyncio.wait_for(floor.recv(), 5) for _ in range(2)]
    assert [p.pts for p in out] == [300000, 303000]
    # Switch: the new source is asked for a keyframe; until it comes the old one keeps
    # the picture going (no gap), and the new source's delta frames are skipped.
    floor.switch(b)
    assert b.subscriber_count == 1 and b.sent_requests == 1 and a.subscriber_count == 1
    await second.queue.put(packet(7, False))
    await first.queue.put(packet(102, False))
    assert (await asyncio.wait_for(floor.recv(), 5)).pts == 306000
    for n, key in ((8, True), (9, False)):
        await second.queue.put(packet(n, key))
    out = [await asyncio.wait_for(floor.recv(), 5) for _ in range(2)]
    assert out[0].is_keyframe
    assert a.subscriber_count == 0  # left at the new source's keyframe
    await first.queue.put(packet(103, False))  # nothing more from the old source
    # Timestamps continue from the last one sent, one frame later, whatever the new source's clock.
    assert [p.pts for p in out] == [309000, 312000]
    # Nobody on the floor: recv waits; a later switch wakes it.
    floor.switch(None)
    waiter = asyncio.ensure_future(floor.recv())
    await asyncio.sleep(0.05)
    assert not waiter.done()
    floor.switch(a)
    await first.queue.put(packet(200, True))
    assert (await asyncio.wait_for(waiter, 5)).pts == 315000
    floor.stop()
    await a.stop()
    await b.stop()


async def test_a_subscriber_waiting_for_a_keyframe_keeps_asking(monkeypatch):
    # A PLI can be lost, or sent before the publisher's SSRC is known: ask again while waiting.
    from dutycall.conference import forwarding

    monkeypatch.setattr(forwarding, "KEYFRAME_RETRY", 0.0)
    source = QueueTrack()
    forwarder = CountingForwarder(source)
    forwarder.start()
    forwarder._keyframe_interval = 0.0
    sub = forwarder.subscribe()
    asked = forwarder.sent_requests
    for n in range(3):
        await source.queue.put(packet(n, key=False))
        await wait_for(lambda n=n: forwarder.frames_received > n, timeout=5)
    assert forwarder.sent_requests >= asked + 3
    assert sub.waiting_for_keyframe
    await forwarder.stop()


def test_rate_counter_gives_the_stock_rates_at_a_cost_per_packet():
    import random

    from aiortc import rate

    from dutycall.conference.aiortc_compat import STOCK_RATE_COUNTER, RateCounter

    assert rate.RateCounter is RateCounter  # what RemoteBitrateEstimator now builds
    rng = random.Random(7)
    for window in (1000, 50):
        stock, ours = STOCK_RATE_COUNTER(window, 8000), RateCounter(window, 8000)
        now = 10_000
        for step in range(20_000):
            # Bursts, 5 fps trickles and pauses longer than the window, like real streams.
            now += rng.choice((0, 0, 1, 3, 33, 200, 1500 if step % 500 == 0 else 5))
            if rng.random() < 0.001:
                stock.reset()
                ours.reset()
            assert ours.rate(now) == stock.rate(now)
            size = rng.randint(50, 1200)
            stock.add(size, now)
            ours.add(size, now)


async def test_keyframe_requests_in_flight_end_with_the_forwarder(monkeypatch):
    # A PLI is sent in a task of its own: the forwarder keeps it and ends it on stop().
    from dutycall.conference import aiortc_compat

    started = asyncio.Event()

    async def slow_pli(receiver) -> bool:
        started.set()
        await asyncio.sleep(60)
        return True

    monkeypatch.setattr(aiortc_compat, "send_pli", slow_pli)
    source = QueueTrack()
    forwarder = TrackForwarder(source, receiver=object())  # type: ignore[arg-type]
    forwarder.start()
    before = asyncio.all_tasks()
    forwarder.request_keyframe()
    await asyncio.wait_for(started.wait(), 5)
    requests = {t for t in asyncio.all_tasks() - before if not t.done()}
    assert len(requests) == 1
    await forwarder.stop()
    assert all(t.done() for t in requests)


def test_forwarders_plug_in_by_name(monkeypatch):
    import pytest

    from bench.transcoding import TranscodingForwarder, install
    from dutycall.conference import Conference, ConferenceSettings, Forwarder, forwarding

    assert isinstance(TrackForwarder(QueueTrack(), None), Forwarder)
    assert isinstance(TranscodingForwarder(QueueTrack(), None), Forwarder)
    # The baseline is the benchmark's: a server without it refuses to start in that mode.
    monkeypatch.setattr(forwarding, "_FORWARDINGS", dict(forwarding._FORWARDINGS))
    with pytest.raises(ValueError, match="bench.transcoding"):
        Conference(ConferenceSettings(forwarding="transcode"))
    install()
    settings = ConferenceSettings(forwarding="transcode")
    Conference(settings)
    assert settings.make_forwarder() is TranscodingForwarder and not settings.passthrough
    # Or given outright, whatever the mode's name.
    assert ConferenceSettings(forwarder_factory=TranscodingForwarder).make_forwarder() is TranscodingForwarder
    assert ConferenceSettings().make_forwarder() is TrackForwarder and ConferenceSettings().passthrough


async def test_an_owner_keeps_its_background_tasks_until_they_end():
    from dutycall.conference.lifecycle import Tasks

    tasks = Tasks("test")
    gate = asyncio.Event()
    finished = []

    async def work(n: int) -> None:
        await gate.wait()
        finished.append(n)

    tasks.spawn(work(1))
    long = tasks.spawn(asyncio.sleep(60))
    assert len(tasks) == 2
    gate.set()
    await wait_for(lambda: finished == [1], timeout=5)
    assert len(tasks) == 1
    await tasks.cancel()
    assert long.cancelled() and len(tasks) == 0


def test_the_packet_sender_packetizes_vp8_exactly_as_aiortc():
    """forward_packets' VP8 payloads are byte for byte what aiortc's Vp8Encoder.pack makes."""
    from aiortc.codecs.vpx import Vp8Encoder

    from dutycall.conference.aiortc_compat import vp8_payloads

    rng = __import__("random").Random(3)
    for size in (0, 1, 1295, 1296, 1297, 2592, 2593, 31_000):
        frame = rng.randbytes(size)
        for picture_id in (0, 1, 127, 128, 0x7FFF):
            assert vp8_payloads(memoryview(frame), picture_id) == Vp8Encoder._packetize(frame, picture_id)


def test_the_packet_senders_history_answers_a_nack_with_the_packet_sent():
    """The sender keeps serialized packets; RTCRtpSender._retransmit gets them back as RtpPackets
    that serialize to the same bytes (so a retransmission, RTX-wrapped or not, is what was sent)."""
    from aiortc import rtp
    from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters

    from dutycall.conference.aiortc_compat import _ntp_now, _SentPackets

    extensions = rtp.HeaderExtensionsMap()
    extensions.configure(RTCRtpParameters(headerExtensions=[
        RTCRtpHeaderExtensionParameters(id=1, uri="urn:ietf:params:rtp-hdrext:sdes:mid"),
        RTCRtpHeaderExtensionParameters(id=3, uri="http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"),
    ]))
    sent = rtp.RtpPacket(payload_type=96, marker=1, sequence_number=65535, timestamp=123456, ssrc=42,
                         payload=b"\x90\x80\x80\x01frame")
    sent.extensions.mid = "0"
    sent.extensions.abs_send_time = (_ntp_now() >> 14) & 0xFFFFFF
    data = sent.serialize(extensions)
    history = _SentPackets(extensions)
    history[65535 % rtp.RTP_HISTORY_SIZE] = data
    again = history.get(65535 % rtp.RTP_HISTORY_SIZE)
    assert again.sequence_number == 65535 and again.marker == 1 and again.payload == sent.payload
    assert again.extensions.mid == "0" and again.serialize(extensions) == data
    assert history.get(3) is None


def test_the_packet_senders_header_template_is_aiortcs_serialization():
    """A frame's header from the template (timestamp and abs-send-time patched) is the bytes
    ``RtpPacket.serialize`` makes, with and without the extensions negotiated."""
    import random

    from aiortc import rtp
    from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters

    from dutycall.conference.aiortc_compat import HeaderTemplate

    rng = random.Random(7)
    for uris in (("urn:ietf:params:rtp-hdrext:sdes:mid", "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"),
                 ("http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",),
                 ("urn:ietf:params:rtp-hdrext:sdes:mid",), ()):
        extensions = rtp.HeaderExtensionsMap()
        extensions.configure(RTCRtpParameters(headerExtensions=[
            RTCRtpHeaderExtensionParameters(id=i + 1, uri=uri) for i, uri in enumerate(uris)]))
        for mid in ("0", "video-1", None):
            pt, ssrc = rng.choice((96, 97, 111, 127)), rng.getrandbits(32)
            template = HeaderTemplate(pt, ssrc, mid, extensions)
            for _ in range(50):
                timestamp, ntp = rng.getrandbits(32), rng.getrandbits(64)
                expected = rtp.RtpPacket(payload_type=pt, timestamp=timestamp, ssrc=ssrc)
                expected.extensions.abs_send_time = (ntp >> 14) & 0xFFFFFF
                expected.extensions.mid = mid
                assert bytes(template.frame(timestamp, ntp)) == expected.serialize(extensions), (uris, mid)


def test_the_packet_senders_clock_is_aiortcs():
    from aiortc import clock

    from dutycall.conference.aiortc_compat import _ntp_now

    assert abs(_ntp_now() - clock.current_ntp_time()) / 2**32 < 0.05


async def test_stale_video_asks_for_keyframes_at_the_recovery_rate():
    """Subscribers that shed stale video (the server is behind) cost the publisher at most one
    keyframe per RECOVERY_KEYFRAME_INTERVAL however many of them there are and however often
    they retry; a subscriber joining meanwhile is still asked for at the join rate."""
    from dutycall.conference import forwarding

    forwarder = CountingForwarder(QueueTrack())
    forwarder.start()
    subs = [forwarder.subscribe() for _ in range(20)]
    await wait_for(lambda: forwarder.sent_requests >= 1, timeout=5)  # the joiners' keyframe
    for sub in subs:
        sub.push(packet(0, True), time.monotonic())
    asked = forwarder.sent_requests
    started = time.monotonic()
    n = 1
    # A second of stale delta frames to every subscriber, retries included (KEYFRAME_RETRY 0.5 s).
    while time.monotonic() - started < 1.5:
        for sub in subs:
            sub.push(packet(n, False), time.monotonic() - 5.0)
            assert sub.waiting_for_keyframe
        n += 1
        await asyncio.sleep(0.05)
    elapsed = time.monotonic() - started
    assert forwarder.recovery_requests <= elapsed / forwarding.RECOVERY_KEYFRAME_INTERVAL + 1
    assert forwarder.recovery_requests_throttled >= len(subs) - 1
    # A throttled request is deferred, not dropped: with every subscriber still waiting and no
    # frame arriving at all, the publisher is asked again when the interval ends.
    recovered = forwarder.recovery_requests
    await wait_for(lambda: forwarder.recovery_requests > recovered,
                   timeout=forwarding.RECOVERY_KEYFRAME_INTERVAL + 2, what="the deferred recovery request")
    await wait_for(lambda: forwarder._pending_keyframe is None, timeout=2)
    assert forwarder.sent_requests - asked == forwarder.recovery_requests
    # A keyframe ends the recovery; a new subscriber is asked for at once (join rate).
    for sub in subs:
        sub.push(packet(n, True), time.monotonic())
        assert not sub.waiting_for_keyframe and not sub._recovering
    before = forwarder.sent_requests
    forwarder.subscribe()
    await wait_for(lambda: forwarder.sent_requests > before, timeout=1, what="the joiner's keyframe request")
    await forwarder.stop()


async def test_a_frames_datagrams_leave_together_in_order():
    """send_datagrams: a frame's packets (equal sizes, a shorter last, more than one GSO batch)
    arrive as the same datagrams in the same order, through GSO or, turned off, one by one."""
    import socket

    from dutycall.conference import aiortc_compat

    loop = asyncio.get_running_loop()
    received: list[bytes] = []

    class Sink(asyncio.DatagramProtocol):
        def datagram_received(self, data, addr):
            received.append(data)

    sink, _ = await loop.create_datagram_endpoint(Sink, local_addr=("127.0.0.1", 0))
    sender, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0))
    sink.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    address = sink.get_extra_info("sockname")
    kernel_gso = aiortc_compat._gso
    try:
        for gso in (kernel_gso, False):
            aiortc_compat._gso = gso
            frames = [[bytes([i, i]) * 661 for i in range(70)] + [b"end"],  # 3 GSO batches and a short one
                      [b"x" * 100],
                      [b"a" * 50, b"b" * 60, b"c" * 60, b"d" * 10]]
            received.clear()
            for frame in frames:
                aiortc_compat.send_datagrams(sender, frame, address)
            expected = [d for frame in frames for d in frame]
            count = len(expected)
            await wait_for(lambda count=count: len(received) >= count, timeout=5, what="every datagram")
            assert received == expected
            assert aiortc_compat._gso == gso  # the kernel took the segmented sends
    finally:
        aiortc_compat._gso = kernel_gso
        sink.close()
        sender.close()
