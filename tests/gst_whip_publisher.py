"""A WHIP publisher built on GStreamer 1.22's webrtcbin: independent software for the WHIP tests.

Run with Debian's ``/usr/bin/python3`` (GStreamer and its introspection data come from Debian, not
from our virtual environment); it imports nothing of dutycall. GStreamer 1.22 has no ``whipsink``,
so this is the WHIP client (RFC 9725) by hand: webrtcbin makes the offer, ICE gathering is
waited for (no trickle), the offer is POSTed with a bearer token (urllib), the answer is set,
media flows for ``--seconds``, then the Location is DELETEd.

    /usr/bin/python3 tests/gst_whip_publisher.py --url http://127.0.0.1:8080/api/whip \
        --token TOKEN --codec h264 --seconds 6

H264 is x264 with ``tune=zerolatency``, an uneven ``key-int-max`` and four slices per frame (a
frame is several NAL units, so several RTP packets share a timestamp, as real cameras send);
VP8 is libvpx. Audio is Opus from a sine wave in both.

Progress goes to stdout as JSON lines, one object each: ``{"event": "posted", "status": 201,
"location": ...}``, ``{"event": "connected"}`` (ICE and DTLS up), ``{"event": "progress", "frames": N}`` every
quarter of a second,
``{"event": "done", "frames": N, "seconds": S, "media_seconds": M, "delete_status": 200}``, or ``{"event":
"error", ...}`` then exit status 1. ``frames`` counts the encoded video frames sent once the
connection was up (what a receiver could have had); ``media_seconds`` is the span of their
timestamps (what an archive of them lasts: at startup an encoder can lag the wall clock).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstSdp", "1.0")
gi.require_version("GstVideo", "1.0")
gi.require_version("GstWebRTC", "1.0")
from gi.repository import GLib, Gst, GstSdp, GstVideo, GstWebRTC  # noqa: E402

FRAME_NS = 1_000_000_000 // 30
VIDEO = {
    "h264": ("x264enc name=encoder tune=zerolatency speed-preset=ultrafast bitrate=1000 key-int-max=37 "
             "option-string=slices=4 ! video/x-h264,profile=constrained-baseline,stream-format=byte-stream "
             "! rtph264pay name=videopay config-interval=-1 aggregate-mode=zero-latency pt=102 mtu=1200 "
             "! application/x-rtp,media=video,encoding-name=H264,payload=102"),
    "vp8": ("vp8enc name=encoder deadline=1 cpu-used=8 target-bitrate=1000000 keyframe-max-dist=37 error-resilient=1 "
            "! rtpvp8pay name=videopay pt=96 mtu=1200 ! application/x-rtp,media=video,encoding-name=VP8,payload=96"),
}


def add_local_address(webrtc: Gst.Element, address: str) -> None:
    """Make webrtcbin's libnice agent gather on ``address``.

    libnice leaves loopback out of the addresses it gathers on, and in the tests' network
    namespace loopback is all there is: gathering would never complete. 1.22's GstWebRTCICE has
    no call for it and libnice has no introspection data in Debian, so this is
    ``nice_agent_add_local_address`` through ctypes on the agent webrtcbin's ICE object holds.
    """
    get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
    get_pointer.restype, get_pointer.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
    gobject, nice = ctypes.CDLL("libgobject-2.0.so.0"), ctypes.CDLL("libnice.so.10")
    gobject.g_object_get.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p), ctypes.c_void_p]
    gobject.g_object_unref.argtypes = [ctypes.c_void_p]
    # Not webrtc.get_property("ice-agent"): PyGObject 3.42 mishandles that object's references.
    ice, agent = ctypes.c_void_p(), ctypes.c_void_p()
    gobject.g_object_get(get_pointer(webrtc.__gpointer__, None), b"ice-agent", ctypes.byref(ice), None)
    gobject.g_object_get(ice, b"agent", ctypes.byref(agent), None)
    nice.nice_address_new.restype = ctypes.c_void_p
    nice.nice_address_set_from_string.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    nice.nice_agent_add_local_address.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    nice.nice_address_free.argtypes = [ctypes.c_void_p]
    nice_address = nice.nice_address_new()
    if not nice.nice_address_set_from_string(nice_address, address.encode()) \
            or not nice.nice_agent_add_local_address(agent, nice_address):
        raise ValueError(f"libnice refused the local address {address!r}")
    nice.nice_address_free(nice_address)
    gobject.g_object_unref(agent)  # g_object_get gave us a reference to each
    gobject.g_object_unref(ice)


def emit(**event: object) -> None:
    print(json.dumps(event), flush=True)


class Publisher:
    def __init__(self, url: str, token: str, codec: str, seconds: float, width: int, height: int,
                 ice_addresses: list[str]) -> None:
        self.url, self.token, self.seconds = url, token, seconds
        self.loop = GLib.MainLoop()
        self.failed: str | None = None
        self.location: str | None = None
        self.connected_at: float | None = None
        self.connected_running: int | None = None
        #: The first and last timestamps of the video sent (running time, ns).
        self.video_pts: tuple[int, int] | None = None
        self.frames = 0
        self.frames_lock = threading.Lock()
        self.pipeline = Gst.parse_launch(
            "webrtcbin name=send bundle-policy=max-bundle "
            f"videotestsrc is-live=true pattern=ball ! video/x-raw,width={width},height={height},framerate=30/1 "
            f"! videoconvert ! queue leaky=downstream max-size-buffers=1 ! {VIDEO[codec]} ! send. "
            "audiotestsrc is-live=true wave=sine ! audioconvert ! audioresample ! queue leaky=downstream max-size-buffers=2 "
            "! opusenc ! rtpopuspay name=audiopay pt=111 ! application/x-rtp,media=audio,encoding-name=OPUS,payload=111 ! send.")
        self.webrtc = self.pipeline.get_by_name("send")
        for address in ice_addresses:
            add_local_address(self.webrtc, address)
        self.webrtc.connect("on-negotiation-needed", self._negotiate)
        self.webrtc.connect("notify::ice-gathering-state", self._gathering)
        self.webrtc.connect("notify::connection-state", self._connection)
        # webrtcbin holds media until DTLS is up: what is made before then is dropped (here and by
        # the leaky queues), as a live camera would, rather than sent late in a burst (a jump in the
        # RTP timestamps).
        for name in ("videopay", "audiopay"):
            self.pipeline.get_by_name(name).get_static_pad("src").add_probe(
                Gst.PadProbeType.BUFFER | Gst.PadProbeType.BUFFER_LIST, self._hold, name)
        bus = self.pipeline.get_bus()
        bus.add_signal_watch()
        bus.connect("message::error", self._bus_error)

    # -- GStreamer callbacks (the GLib main loop's thread, or a streaming thread for _hold) ----------

    def _hold(self, pad: Gst.Pad, info: Gst.PadProbeInfo, name: str) -> Gst.PadProbeReturn:
        # Live sources stamp buffers with running time: a buffer made before the connection was up
        # (one an element still held) is stale too.
        # Payloaders push lists of packets (one frame's) as often as single ones.
        buffer = info.get_buffer() if info.type & Gst.PadProbeType.BUFFER else info.get_buffer_list().get(0)
        pts = buffer.pts
        if self.connected_running is None or pts < self.connected_running:
            return Gst.PadProbeReturn.DROP
        if name == "videopay":
            if self.video_pts is None or pts > self.video_pts[1]:  # a new frame (not its next packets)
                with self.frames_lock:
                    self.frames += 1
            self.video_pts = (pts if self.video_pts is None else min(self.video_pts[0], pts),
                              pts if self.video_pts is None else max(self.video_pts[1], pts))
        return Gst.PadProbeReturn.OK

    def _bus_error(self, bus: Gst.Bus, message: Gst.Message) -> None:
        error, debug = message.parse_error()
        self.fail(f"GStreamer: {error.message} ({debug})")

    def _negotiate(self, element: Gst.Element) -> None:
        for transceiver in self._transceivers():
            transceiver.set_property("direction", GstWebRTC.WebRTCRTPTransceiverDirection.SENDONLY)
        promise = Gst.Promise.new_with_change_func(self._offer_created, None)
        element.emit("create-offer", None, promise)

    def _transceivers(self) -> list[GstWebRTC.WebRTCRTPTransceiver]:
        found, index = [], 0
        while (transceiver := self.webrtc.emit("get-transceiver", index)) is not None:
            found.append(transceiver)
            index += 1
        return found

    def _offer_created(self, promise: Gst.Promise, _: object) -> None:
        reply = promise.get_reply()
        offer = reply.get_value("offer") if reply is not None else None
        if offer is None:
            self.fail("webrtcbin made no offer")
            return
        self.webrtc.emit("set-local-description", offer, Gst.Promise.new())

    def _gathering(self, element: Gst.Element, _: object) -> None:
        if element.get_property("ice-gathering-state") == GstWebRTC.WebRTCICEGatheringState.COMPLETE \
                and self.location is None and self.failed is None:
            sdp = element.get_property("local-description").sdp.as_text()
            GLib.idle_add(self._post, sdp)

    def _connection(self, element: Gst.Element, _: object) -> None:
        state = element.get_property("connection-state")
        if state == GstWebRTC.WebRTCPeerConnectionState.CONNECTED and self.connected_at is None:
            self.connected_running = self.pipeline.get_clock().get_time() - self.pipeline.get_base_time()
            # The first frame sent is a keyframe (the one before it was stale and dropped).
            self.pipeline.get_by_name("encoder").get_static_pad("src").send_event(
                GstVideo.video_event_new_upstream_force_key_unit(Gst.CLOCK_TIME_NONE, True, 0))
            self.connected_at = time.monotonic()
            emit(event="connected", ice=element.get_property("ice-connection-state").value_nick)
            GLib.timeout_add(int(self.seconds * 1000), self._finish)
            GLib.timeout_add(250, self._progress)
        elif state == GstWebRTC.WebRTCPeerConnectionState.FAILED:
            self.fail("the peer connection failed (ICE or DTLS)")

    def _progress(self) -> bool:
        if self.loop.is_running() and self.failed is None:
            with self.frames_lock:
                frames = self.frames
            emit(event="progress", frames=frames, seconds=round(time.monotonic() - (self.connected_at or 0), 3))
            return True
        return False

    # -- WHIP ------------------------------------------------------------------------------------------

    def _request(self, method: str, url: str, body: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
        headers = {"Authorization": f"Bearer {self.token}"}
        if body is not None:
            headers["Content-Type"] = "application/sdp"
        request = urllib.request.Request(url, data=body, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=20) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read()

    def _post(self, sdp: str) -> bool:
        try:
            status, headers, body = self._request("POST", self.url, sdp.encode())
        except OSError as exc:
            self.fail(f"WHIP POST failed: {exc}")
            return False
        self.location = headers.get("Location")
        emit(event="posted", status=status, location=self.location, offer=sdp, answer=body.decode("utf-8", "replace"))
        if status != 201 or not self.location:
            self.fail(f"WHIP POST answered {status}: {body[:300]!r}")
            return False
        ok, message = GstSdp.SDPMessage.new_from_text(body.decode("utf-8"))
        if ok != GstSdp.SDPResult.OK:
            self.fail("the answer is not SDP")
            return False
        answer = GstWebRTC.WebRTCSessionDescription.new(GstWebRTC.WebRTCSDPType.ANSWER, message)
        self.webrtc.emit("set-remote-description", answer, Gst.Promise.new())
        return False

    def _finish(self) -> bool:
        with self.frames_lock:
            frames = self.frames
        seconds = time.monotonic() - (self.connected_at or time.monotonic())
        self.pipeline.set_state(Gst.State.NULL)
        status = 0
        if self.location:
            target = urllib.parse.urljoin(self.url, self.location)
            status = self._request("DELETE", target)[0]
        first, last = self.video_pts or (0, -FRAME_NS)
        emit(event="done", frames=frames, seconds=round(seconds, 3), delete_status=status,
             media_seconds=round((last - first + FRAME_NS) / 1e9, 3))
        self.loop.quit()
        return False

    def fail(self, why: str) -> None:
        if self.failed is None:
            self.failed = why
            emit(event="error", error=why)
            self.loop.quit()

    def run(self, deadline: float) -> int:
        self.pipeline.set_state(Gst.State.PLAYING)
        GLib.timeout_add(int(deadline * 1000), lambda: self.fail(f"not done within {deadline} s") or False)
        self.loop.run()
        self.pipeline.set_state(Gst.State.NULL)
        return 1 if self.failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="the WHIP endpoint")
    parser.add_argument("--token", required=True, help="the bearer token")
    parser.add_argument("--codec", choices=sorted(VIDEO), default="h264")
    parser.add_argument("--seconds", type=float, default=6.0, help="how long to stream once connected")
    parser.add_argument("--size", default="640x360")
    parser.add_argument("--ice-address", action="append", default=[],
                        help="gather ICE candidates on this local address (repeatable; default: libnice's own)")
    parser.add_argument("--deadline", type=float, default=60.0, help="give up after this many seconds")
    args = parser.parse_args()
    Gst.init(None)
    width, height = (int(x) for x in args.size.split("x"))
    return Publisher(args.url, args.token, args.codec, args.seconds, width, height, args.ice_address).run(args.deadline)


if __name__ == "__main__":
    sys.exit(main())
