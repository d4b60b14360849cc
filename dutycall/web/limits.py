"""Limits on what one client may try: failed sign-ins per address."""

from __future__ import annotations

import time

from ..directory.errors import TooManyAttempts


class SignInLimiter:
    """Failed sign-ins per client address in a sliding window: a guesser spreading attempts over
    many usernames (which the per-account lockout cannot see) is stopped at the door."""

    def __init__(self, max_failures: int = 20, window: float = 900.0, max_clients: int = 10_000) -> None:
        self.max_failures = max_failures
        self.window = window
        self.max_clients = max_clients
        self._failures: dict[str, list[float]] = {}

    def _recent(self, client: str, now: float) -> list[float]:
        times = [t for t in self._failures.get(client, []) if now - t < self.window]
        if times:
            self._failures[client] = times
        else:
            self._failures.pop(client, None)
        return times

    def check(self, client: str) -> None:
        if len(self._recent(client, time.monotonic())) >= self.max_failures:
            raise TooManyAttempts("此地址登录失败次数过多，请 15 分钟后再试")

    def succeeded(self, client: str) -> None:
        """Take back the failure counted for an attempt in flight that turned out right."""
        times = self._failures.get(client)
        if times:
            times.pop()

    def failed(self, client: str) -> None:
        now = time.monotonic()
        if client not in self._failures and len(self._failures) >= self.max_clients:
            self._failures.pop(next(iter(self._failures)))
        self._recent(client, now)
        self._failures.setdefault(client, []).append(now)
