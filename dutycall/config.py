"""Server configuration: defaults, environment variables (DUTYCALL_*) and command-line flags."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


def _split(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


@dataclass
class Config:
    """Everything the server needs to start; see README "Configuration"."""

    host: str = "0.0.0.0"
    port: int = 8080
    #: Local addresses advertised as ICE host candidates; empty: all of the host's own.
    ice_addresses: list[str] = field(default_factory=list)
    #: STUN/TURN servers the server itself uses (RTCIceServer dicts: urls, username, credential).
    server_ice_servers: list[dict[str, Any]] = field(default_factory=list)
    #: STUN/TURN servers handed to browsers in the ``joined`` message.
    client_ice_servers: list[dict[str, Any]] = field(default_factory=list)
    #: "passthrough" (the SFU) or "transcode" (benchmark baseline only).
    forwarding: str = "passthrough"
    media_timeout: float = 3.0
    #: Media worker processes for subscribers' connections (conference/workers.py); 0: none,
    #: everything in the one process.
    media_workers: int = 0
    tls_cert: str | None = None
    tls_key: str | None = None
    log_level: str = "INFO"
    #: SQLAlchemy URL; SQLite file by default, e.g. postgresql://user:pass@host/dutycall.
    database_url: str = "sqlite:///data/dutycall.sqlite3"
    #: First administrator, created when there are no accounts (password generated if unset).
    admin_username: str | None = None
    admin_password: str | None = None
    #: Mark cookies Secure (on by default behind TLS).
    secure_cookies: bool = False
    #: Seconds between the two snapshots of the liveness check after a room answers.
    evidence_gap: float = 3.0
    #: How often the scheduler looks for roll-call plans that are due.
    scheduler_interval: float = 5.0
    #: Incident reporting deadlines per level, overriding the defaults (JSON, see
    #: incidents/deadlines.py), and how often the watch looks for late reports (seconds).
    incident_deadlines: str = ""
    incident_interval: float = 30.0
    #: Reverse proxies (addresses or CIDR blocks) whose X-Forwarded-For is believed; see
    #: web/clients.py. Empty: the header is ignored and the connection's address is the client.
    trusted_proxies: list[str] = field(default_factory=list)
    #: The outgoing alert webhook (a site's SMS gateway): URL, HMAC secret, first retry delay
    #: (seconds, doubling), attempts before giving up. No URL: no webhook.
    alert_webhook_url: str = ""
    alert_webhook_secret: str = ""
    alert_webhook_backoff: float = 5.0
    alert_webhook_attempts: int = 8
    #: Incident footage: where the archive's segment files go, each segment's length (seconds),
    #: and the free space below which no recording starts (bytes; the host is told why).
    recordings_dir: str = "data/recordings"
    recording_segment_seconds: float = 60.0
    recording_min_free_bytes: int = 1024 * 1024 * 1024
    #: Days after which a closed incident's footage files are deleted (rows and hashes kept); 0: never.
    recording_retention_days: float = 0.0
    #: Pre-recorded greeting videos (media/playout.py, web/greeting_media.py): an upload is refused
    #: (507) when the free space under ``recordings_dir`` would fall below the larger of these two
    #: floors (bytes; a fraction of the disk), and (413) when its unit's stored videos would pass
    #: the quota (bytes).
    greeting_media_min_free_bytes: int = 2 * 1024 * 1024 * 1024
    greeting_media_min_free_ratio: float = 0.05
    greeting_media_unit_quota_bytes: int = 5 * 1024 * 1024 * 1024
    #: Seconds a video's preparation (the child process) may take before it is killed and failed.
    greeting_media_prepare_seconds: float = 600.0
    #: An upload that sends nothing for this many seconds, or on average less than
    #: ``greeting_upload_min_rate`` bytes a second once that long has passed, is abandoned (408).
    greeting_upload_idle_seconds: float = 30.0
    greeting_upload_min_rate: int = 32 * 1024
    #: A live greeting with no video playing and neither its leader nor its creator in its room
    #: for this many seconds ends by itself (a leader who closed the page, a scheduled start
    #: nobody came to); the consoles go back to standby.
    greeting_unattended_seconds: float = 300.0
    #: The wall (多画面, media/wall.py): pages looking at once, per account and on the server
    #: (DUTYCALL_WALL_VIEWERS_PER_ACCOUNT, DUTYCALL_WALL_VIEWERS_MAX); a new one beyond is 429.
    wall_viewers_per_account: int = 2
    wall_viewers_max: int = 50
    #: ``host:port`` where /metrics is also served without sign-in (a separate listener for
    #: Prometheus on an internal network); empty: only on the main port, for a signed-in
    #: administrator or with ``metrics_token``.
    metrics_address: str = ""
    #: Bearer token that also opens /metrics on the main port (DUTYCALL_METRICS_TOKEN); empty: none.
    metrics_token: str = ""
    #: Networks (CIDR, optionally ``:port``, ``:lo-hi`` or ``:*``) RTSP sources may be pulled from
    #: (media/rtsp.py AllowPolicy); ports 554, 8554 and 322 on each. Loopback, link-local and
    #: multicast only when an entry lies inside them.
    rtsp_allow: str = "10.0.0.0/8,172.16.0.0/12,192.168.0.0/16"
    #: The deployment's time zone (IANA name, e.g. Asia/Shanghai): every time shown and every
    #: local day/month counted (dutycall/timezone.py). Empty: the system's zone.
    timezone: str = ""


def _ice_servers(value: str | None, name: str) -> list[dict[str, Any]]:
    if not value:
        return []
    try:
        servers = json.loads(value)
    except ValueError as exc:
        raise SystemExit(f"{name}: not valid JSON: {exc}") from exc
    if isinstance(servers, dict):
        servers = [servers]
    if not isinstance(servers, list) or not all(isinstance(s, dict) and "urls" in s for s in servers):
        raise SystemExit(f'{name}: expected a JSON list of {{"urls": ..., "username": ..., "credential": ...}}')
    return servers


def add_arguments(parser: argparse.ArgumentParser) -> None:
    env = os.environ.get
    parser.add_argument("--host", default=env("DUTYCALL_HOST", "0.0.0.0"), help="address to listen on")
    parser.add_argument("--port", type=int, default=int(env("DUTYCALL_PORT", "8080")))
    parser.add_argument(
        "--ice-addresses", default=env("DUTYCALL_ICE_ADDRESSES", ""),
        help="comma-separated local addresses to advertise as ICE candidates (default: all of the host's)",
    )
    parser.add_argument(
        "--server-ice-servers", default=env("DUTYCALL_SERVER_ICE_SERVERS", ""),
        help="JSON list of STUN/TURN servers for the server's own connections",
    )
    parser.add_argument(
        "--client-ice-servers", default=env("DUTYCALL_CLIENT_ICE_SERVERS", ""),
        help="JSON list of STUN/TURN servers handed to browsers",
    )
    parser.add_argument(
        "--forwarding", choices=("passthrough", "transcode"),
        default=env("DUTYCALL_FORWARDING", "passthrough"), help=argparse.SUPPRESS,
    )
    parser.add_argument("--media-timeout", type=float, default=float(env("DUTYCALL_MEDIA_TIMEOUT", "3")))
    parser.add_argument(
        "--media-workers", default=env("DUTYCALL_MEDIA_WORKERS", "0"),
        help="media worker processes that send subscribers their media, a number or 'auto' (one per "
             "core); 0 (default): all in the server process",
    )
    parser.add_argument("--tls-cert", default=env("DUTYCALL_TLS_CERT"))
    parser.add_argument("--tls-key", default=env("DUTYCALL_TLS_KEY"))
    parser.add_argument("--log-level", default=env("DUTYCALL_LOG_LEVEL", "INFO"))
    parser.add_argument(
        "--database-url", default=env("DUTYCALL_DATABASE_URL", "sqlite:///data/dutycall.sqlite3"),
        help="database URL (default: SQLite file data/dutycall.sqlite3)",
    )
    parser.add_argument(
        "--trusted-proxy", default=env("DUTYCALL_TRUSTED_PROXIES", ""),
        help="comma-separated addresses or CIDR blocks of reverse proxies whose X-Forwarded-For "
             "is believed (default: none, the header is ignored)",
    )
    parser.add_argument(
        "--rtsp-allow", default=env("DUTYCALL_RTSP_ALLOW", "10.0.0.0/8,172.16.0.0/12,192.168.0.0/16"),
        help="comma-separated networks (CIDR, optionally :port, :lo-hi or :*) RTSP sources may be pulled "
             "from; ports 554, 8554, 322 on each (default: the private ranges 10/8, 172.16/12, 192.168/16)",
    )
    parser.add_argument(
        "--timezone", default=env("DUTYCALL_TIMEZONE", ""),
        help="the deployment's time zone, an IANA name such as Asia/Shanghai: times on pages, sheets, "
             "PDFs and statistics, and local days and months (default: the system's zone)",
    )
    parser.add_argument(
        "--metrics-address", default=env("DUTYCALL_METRICS_ADDRESS", ""),
        help="host:port where /metrics is also served without sign-in, for Prometheus "
             "(default: none; on the main port /metrics needs an administrator or DUTYCALL_METRICS_TOKEN)",
    )


def from_args(args: argparse.Namespace) -> Config:
    if bool(args.tls_cert) != bool(args.tls_key):
        raise SystemExit("--tls-cert and --tls-key go together")
    return Config(
        host=args.host,
        port=args.port,
        ice_addresses=_split(args.ice_addresses),
        server_ice_servers=_ice_servers(args.server_ice_servers, "--server-ice-servers"),
        client_ice_servers=_ice_servers(args.client_ice_servers, "--client-ice-servers"),
        forwarding=args.forwarding,
        media_timeout=args.media_timeout,
        media_workers=_media_workers(args.media_workers),
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        log_level=args.log_level,
        database_url=args.database_url,
        admin_username=os.environ.get("DUTYCALL_ADMIN_USERNAME") or None,
        admin_password=os.environ.get("DUTYCALL_ADMIN_PASSWORD") or None,
        secure_cookies=bool(args.tls_cert) or os.environ.get("DUTYCALL_SECURE_COOKIES") == "1",
        incident_deadlines=_incident_deadlines(os.environ.get("DUTYCALL_INCIDENT_DEADLINES", "")),
        trusted_proxies=_trusted_proxies(args.trusted_proxy),
        rtsp_allow=_rtsp_allow(args.rtsp_allow),
        timezone=_timezone(args.timezone),
        **_metrics(args.metrics_address, os.environ),
        **_alert_webhook(os.environ),
        **_recordings(os.environ),
        **_greeting_media(os.environ),
        **_wall(os.environ),
    )


def _media_workers(value: str) -> int:
    """--media-workers (DUTYCALL_MEDIA_WORKERS): a number 0-64 or "auto" (one per core)."""
    text = str(value).strip().lower()
    if text == "auto":
        return os.cpu_count() or 1
    if not text.isdigit() or int(text) > 64:
        raise SystemExit("--media-workers: a number from 0 to 64, or auto")
    return int(text)


def from_timezone_flag(name: str | None) -> str:
    return _timezone(name)


def _timezone(name: str | None) -> str:
    """--timezone (DUTYCALL_TIMEZONE), checked at start."""
    from .timezone import parse_zone

    try:
        parse_zone(name or "")
    except ValueError as exc:
        raise SystemExit(f"--timezone: {exc}") from exc
    return (name or "").strip()


def _recordings(environ: Mapping[str, str]) -> dict[str, Any]:
    """DUTYCALL_RECORDINGS_DIR, DUTYCALL_RECORDING_SEGMENT_SECONDS (5-3600),
    DUTYCALL_RECORDING_MIN_FREE_MB and DUTYCALL_RECORDING_RETENTION_DAYS (0: keep forever),
    checked at start."""
    found: dict[str, Any] = {}
    if environ.get("DUTYCALL_RECORDINGS_DIR", "").strip():
        found["recordings_dir"] = environ["DUTYCALL_RECORDINGS_DIR"].strip()
    try:
        if environ.get("DUTYCALL_RECORDING_SEGMENT_SECONDS", "").strip():
            found["recording_segment_seconds"] = float(environ["DUTYCALL_RECORDING_SEGMENT_SECONDS"])
            if not 5 <= found["recording_segment_seconds"] <= 3600:
                raise ValueError("between 5 and 3600")
        if environ.get("DUTYCALL_RECORDING_MIN_FREE_MB", "").strip():
            found["recording_min_free_bytes"] = int(environ["DUTYCALL_RECORDING_MIN_FREE_MB"]) * 1024 * 1024
            if found["recording_min_free_bytes"] < 0:
                raise ValueError("not negative")
        if environ.get("DUTYCALL_RECORDING_RETENTION_DAYS", "").strip():
            found["recording_retention_days"] = float(environ["DUTYCALL_RECORDING_RETENTION_DAYS"])
            if not 0 <= found["recording_retention_days"] <= 100 * 365:
                raise ValueError("retention days between 0 (keep forever) and 36500")
    except ValueError as exc:
        raise SystemExit(f"recording settings: {exc}") from exc
    return found


def _greeting_media(environ: Mapping[str, str]) -> dict[str, Any]:
    """DUTYCALL_GREETING_MEDIA_MIN_FREE_MB, _MIN_FREE_PERCENT, _UNIT_QUOTA_MB, _PREPARE_SECONDS,
    DUTYCALL_GREETING_UPLOAD_IDLE_SECONDS and _MIN_RATE_KB (KiB a second),
    DUTYCALL_GREETING_UNATTENDED_SECONDS, checked at start."""
    found: dict[str, Any] = {}
    settings = (("DUTYCALL_GREETING_MEDIA_MIN_FREE_MB", "greeting_media_min_free_bytes", 1024 * 1024, 0, 10**9),
                ("DUTYCALL_GREETING_MEDIA_MIN_FREE_PERCENT", "greeting_media_min_free_ratio", 0.01, 0, 100),
                ("DUTYCALL_GREETING_MEDIA_UNIT_QUOTA_MB", "greeting_media_unit_quota_bytes", 1024 * 1024, 1, 10**9),
                ("DUTYCALL_GREETING_MEDIA_PREPARE_SECONDS", "greeting_media_prepare_seconds", 1, 1, 86400),
                ("DUTYCALL_GREETING_UPLOAD_IDLE_SECONDS", "greeting_upload_idle_seconds", 1, 1, 3600),
                ("DUTYCALL_GREETING_UPLOAD_MIN_RATE_KB", "greeting_upload_min_rate", 1024, 0, 10**6),
                ("DUTYCALL_GREETING_UNATTENDED_SECONDS", "greeting_unattended_seconds", 1, 1, 86400))
    for name, key, unit, low, high in settings:
        text = environ.get(name, "").strip()
        if not text:
            continue
        try:
            value = float(text)
        except ValueError:
            raise SystemExit(f"{name}: a number, got {text!r}") from None
        if not low <= value <= high:
            raise SystemExit(f"{name}: between {low} and {high}")
        found[key] = value * unit if isinstance(Config.__dataclass_fields__[key].default, float) \
            else int(value * unit)
    return found


def _wall(environ: Mapping[str, str]) -> dict[str, Any]:
    """DUTYCALL_WALL_VIEWERS_PER_ACCOUNT (1-20) and DUTYCALL_WALL_VIEWERS_MAX (1-1000), checked at start."""
    found: dict[str, Any] = {}
    for name, key, high in (("DUTYCALL_WALL_VIEWERS_PER_ACCOUNT", "wall_viewers_per_account", 20),
                            ("DUTYCALL_WALL_VIEWERS_MAX", "wall_viewers_max", 1000)):
        text = environ.get(name, "").strip()
        if text:
            if not text.isdigit() or not 1 <= int(text) <= high:
                raise SystemExit(f"{name}: a whole number from 1 to {high}")
            found[key] = int(text)
    return found


def split_address(value: str) -> tuple[str, int]:
    """``host:port`` (``[::1]:9100`` for IPv6) → (host, port); ValueError if malformed."""
    host, sep, port = value.strip().rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"expected host:port, got {value!r}")
    return host, int(port)


def _metrics(address: str | None, environ: Mapping[str, str]) -> dict[str, Any]:
    """--metrics-address (DUTYCALL_METRICS_ADDRESS) and DUTYCALL_METRICS_TOKEN, checked at start."""
    found: dict[str, Any] = {}
    if address and address.strip():
        try:
            split_address(address)
        except ValueError as exc:
            raise SystemExit(f"--metrics-address: {exc}") from exc
        found["metrics_address"] = address.strip()
    token = environ.get("DUTYCALL_METRICS_TOKEN", "")
    if token:
        if len(token) < 16 or token != token.strip():
            raise SystemExit("DUTYCALL_METRICS_TOKEN must be 16 characters or more, without surrounding spaces")
        found["metrics_token"] = token
    return found


def _alert_webhook(environ: Mapping[str, str]) -> dict[str, Any]:
    """DUTYCALL_ALERT_WEBHOOK_URL and _SECRET (required with a URL: an unsigned alert is one
    anybody could forge), checked at start."""
    url = environ.get("DUTYCALL_ALERT_WEBHOOK_URL", "").strip()
    secret = environ.get("DUTYCALL_ALERT_WEBHOOK_SECRET", "")
    if not url:
        return {}
    if not url.startswith(("http://", "https://")):
        raise SystemExit("DUTYCALL_ALERT_WEBHOOK_URL must be an http:// or https:// URL")
    if len(secret) < 16:
        raise SystemExit("DUTYCALL_ALERT_WEBHOOK_SECRET must be set (16 characters or more) with a webhook URL")
    return {"alert_webhook_url": url, "alert_webhook_secret": secret}


def _trusted_proxies(value: str | None) -> list[str]:
    from .web.clients import parse_networks

    proxies = _split(value)
    try:
        parse_networks(proxies)
    except ValueError as exc:
        raise SystemExit(f"--trusted-proxy: {exc}") from exc
    return proxies


def _rtsp_allow(value: str) -> str:
    """Checked at start: a typo must stop the server, not open or close the cameras' networks."""
    from .media.rtsp import parse_allow

    try:
        parse_allow(value)
    except ValueError as exc:
        raise SystemExit(f"--rtsp-allow: {exc}") from exc
    return value


def _incident_deadlines(value: str) -> str:
    """Checked at start: a typo in a deadline table must stop the server, not be ignored."""
    from .incidents.deadlines import parse_deadlines

    parse_deadlines(value)
    return value
