"""A stand-in IP camera for the RTSP tests: GStreamer's RTSP server (GstRtspServer, Debian's
gir1.2-gst-rtsp-server-1.0) serving H264 from x264 on loopback, independent of dutycall.

Run with Debian's Python, which has ``gi`` (the venv has not)::

    /usr/bin/python3 tests/gst_rtsp_server.py --port 8554 --path cam [--audio] [--user u --password p]

The picture is like a real camera's: several slices per frame (x264 ``slices=4``: several RTP
packets share one timestamp), no B-frames, and an irregular GOP (keyframes forced at uneven
intervals, besides x264's maximum interval, an odd number of frames). It prints ``READY <port>`` once
listening and runs until killed (SIGTERM or SIGKILL: the camera going away).
"""

from __future__ import annotations

import argparse
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
gi.require_version("GstVideo", "1.0")
from gi.repository import GLib, Gst, GstRtspServer, GstVideo  # noqa: E402

#: Extra keyframes at these intervals (ms, in turn), as a camera's scene-change detection adds them
#: between its fixed interval: the GOP is irregular.
EXTRA_KEYFRAMES_MS = (700, 1300, 450, 1900, 950)


def force_keyframes(enc: Gst.Element) -> None:
    """Ask ``enc`` for a keyframe now and then, at irregular intervals, while it lives."""
    turn = [0]

    def ask() -> bool:
        if enc.get_parent() is None:
            return False
        enc.get_static_pad("src").send_event(
            GstVideo.video_event_new_upstream_force_key_unit(Gst.CLOCK_TIME_NONE, True, 0))
        turn[0] += 1
        GLib.timeout_add(EXTRA_KEYFRAMES_MS[turn[0] % len(EXTRA_KEYFRAMES_MS)], ask)
        return False

    GLib.timeout_add(EXTRA_KEYFRAMES_MS[0], ask)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="cam")
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--fps", type=int, default=25)
    parser.add_argument("--keyint", type=int, default=37, help="the longest GOP, in frames (odd on purpose)")
    parser.add_argument("--bitrate", type=int, default=1000, help="kbit/s")
    parser.add_argument("--audio", action="store_true", help="also an audio stream (Opus)")
    parser.add_argument("--user", default=None)
    parser.add_argument("--password", default=None)
    args = parser.parse_args()

    Gst.init(None)
    video = (f"videotestsrc is-live=true pattern=ball ! "
             f"video/x-raw,width={args.width},height={args.height},framerate={args.fps}/1 ! "
             f"x264enc name=enc tune=zerolatency speed-preset=ultrafast bframes=0 key-int-max={args.keyint} "
             f"bitrate={args.bitrate} "
             f'option-string="slices=4:scenecut=40:min-keyint=5" ! '
             f"video/x-h264,profile=constrained-baseline ! rtph264pay name=pay0 pt=96 config-interval=-1")
    launch = f"( {video} "
    if args.audio:
        launch += ("audiotestsrc is-live=true wave=sine ! audio/x-raw,rate=48000,channels=2 ! opusenc ! "
                   "rtpopuspay name=pay1 pt=97 ")
    launch += ")"

    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(launch)
    factory.set_shared(True)
    factory.connect("media-configure", lambda _factory, media: force_keyframes(
        media.get_element().get_by_name("enc")))
    if args.user:
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, "viewer")
        auth.add_basic(GstRtspServer.RTSPAuth.make_basic(args.user, args.password or ""), token)
        server.set_auth(auth)
        permissions = GstRtspServer.RTSPPermissions()
        for permission in (GstRtspServer.RTSP_PERM_MEDIA_FACTORY_ACCESS, GstRtspServer.RTSP_PERM_MEDIA_FACTORY_CONSTRUCT):
            permissions.add_permission_for_role("viewer", permission, True)
        factory.set_permissions(permissions)
    server.get_mount_points().add_factory(f"/{args.path}", factory)
    if server.attach(None) == 0:
        print(f"FAILED to listen on 127.0.0.1:{args.port}", flush=True)
        sys.exit(1)
    loop = GLib.MainLoop()
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, loop.quit)
    print(f"READY {args.port}", flush=True)
    loop.run()


if __name__ == "__main__":
    main()
