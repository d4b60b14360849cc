"""Frames are handed on when complete (marker bit), not when the next frame starts."""

from __future__ import annotations

import pytest
from aiortc.jitterbuffer import JitterBuffer
from aiortc.rtp import RtpPacket

from dutycall.client import publish
from dutycall.conference.jitter import ImmediateAudioBuffer, MarkerJitterBuffer
from dutycall.synthetic import EncodedColorTrack

from .utils import signalling, wait_for


def rtp(seq: int, ts: int, data: bytes, marker: bool = False) -> RtpPacket:
    packet = RtpPacket(payload_type=96, sequence_number=seq % 65536, timestamp=ts, marker=int(marker))
    packet._data = data  # type: ignore[attr-defined]  (the receiver depayloads before the buffer)
    return packet


def feed(buffer: JitterBuffer, packets: list[RtpPacket]) -> list[tuple[int, bytes] | None]:
    out = []
    for packet in packets:
        _, frame = buffer.add(packet)
        out.append(None if frame is None else (frame.timestamp, frame.data))
    return out


def test_a_frame_is_released_on_its_marker_packet():
    frame = [rtp(100, 3000, b"a"), rtp(101, 3000, b"b"), rtp(102, 3000, b"c", marker=True)]
    assert feed(MarkerJitterBuffer(), frame) == [None, None, (3000, b"abc")]
    # aiortc's own buffer holds the same frame until the next one begins: one frame late a hop.
    assert feed(JitterBuffer(capacity=512, is_video=True), frame) == [None, None, None]


def test_a_gap_holds_the_frame_until_the_missing_packet_arrives():
    buffer = MarkerJitterBuffer()
    assert feed(buffer, [rtp(10, 90, b"a"), rtp(12, 90, b"c", marker=True)]) == [None, None]
    assert feed(buffer, [rtp(11, 90, b"b")]) == [(90, b"abc")]


def test_frames_across_the_sequence_wrap_and_a_lost_marker():
    buffer = MarkerJitterBuffer()
    out = feed(buffer, [
        rtp(65534, 0, b"k1"), rtp(65535, 0, b"k2", marker=True),   # wraps after this frame
        rtp(0, 3000, b"p1"),                                       # its marker packet is lost...
        rtp(2, 6000, b"q1", marker=True),                          # ...a gap: nothing passes it
    ])
    assert out == [None, (0, b"k1k2"), None, None]
    # The lost packet is retransmitted after all (NACK): both frames come out, oldest first.
    assert feed(buffer, [rtp(1, 3000, b"p2", marker=True)]) == [(3000, b"p1p2")]
    assert feed(buffer, [rtp(3, 9000, b"r1")]) == [(6000, b"q1")]


def test_a_frame_whose_marker_never_comes_is_closed_by_the_next_frame():
    buffer = MarkerJitterBuffer()
    assert feed(buffer, [rtp(5, 100, b"x"), rtp(6, 200, b"y", marker=True)]) == [None, (100, b"x")]
    assert feed(buffer, [rtp(7, 300, b"z", marker=True)]) == [(200, b"y")]


def test_audio_packets_pass_at_once_in_order_and_late_ones_are_dropped():
    buffer = ImmediateAudioBuffer()
    out = feed(buffer, [rtp(1, 960, b"1"), rtp(2, 1920, b"2"), rtp(2, 1920, b"2"), rtp(4, 3840, b"4"),
                        rtp(3, 2880, b"3"), rtp(5, 4800, b"5")])
    assert out == [(960, b"1"), (1920, b"2"), None, (3840, b"4"), None, (4800, b"5")]
    wrap = ImmediateAudioBuffer()
    assert feed(wrap, [rtp(65535, 0, b"a"), rtp(0, 960, b"b"), rtp(65535, 0, b"a")]) == [(0, b"a"), (960, b"b"), None]


@pytest.mark.parametrize("codec", ["vp8", "h264"])
async def test_the_server_hands_on_the_last_frame_before_a_pause_without_waiting_for_another(
        ws_url, server, codec):
    client = await signalling(ws_url).connect()
    await client.join("marker", "publisher")
    track = EncodedColorTrack((20, 120, 220), codec=codec)
    pc, published = await publish(client, video=track)
    forwarder = server.conference.rooms["marker"].get_publication(published["publication_id"]).forwarders["video"]
    await wait_for(lambda: forwarder.frames_received >= 30, timeout=30, what="30 frames at the server")
    track.pause()
    # Every frame the camera made reaches the forwarder, the last one included, although no
    # frame follows it (aiortc's own buffer would keep the last one until the camera resumed).
    await wait_for(lambda: forwarder.frames_received == track.frames_sent, timeout=10,
                   what=f"all {track.frames_sent} frames at the server")
    await pc.close()
    await client.close()
