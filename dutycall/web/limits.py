"""Limits on what one client may try at sign-in: failures per address, checks in flight.

A password check costs ~0.3 s of CPU by design and runs in a small bounded pool
(``directory/security.py``); these limits keep that pool shared fairly:

- failed sign-ins per client address in a sliding window (a guesser spreading attempts over
  many usernames, which the per-account lockout cannot see, is stopped at the door);
- at most ``per_client`` checks in flight per client address and ``per_name`` per username,
  the rest answered 429 with ``Retry-After`` at once: one client, or many clients using one
  account, cannot fill the pool and starve everyone else's sign-in, successful ones included.

The client address comes from ``web/clients.py`` (behind a trusted proxy, the real client's).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager

from ..directory.errors import TooManyAttempts

#: Seconds a client refused for checks in flight is asked to wait (one check takes ~0.3 s).
IN_FLIGHT_RETRY_AFTER = 1


def too_many(key: str, retry_after: float) -> TooManyAttempts:
    """A 429 that tells the client when to come back (``Retry-After``, whole seconds)."""
    error = TooManyAttempts(key)
    error.retry_after = max(1, math.ceil(retry_after))
    return error


class SignInLimiter:
    """Failures per client address in a sliding window, and password checks in flight per
    client address and per username."""

    def __init__(self, max_failures: int = 20, window: float = 900.0, max_clients: int = 10_000,
                 per_client: int = 2, per_name: int = 2) -> None:
        self.max_failures = max_failures
        self.window = window
        self.max_clients = max_clients
        self.per_client = per_client
        self.per_name = per_name
        self._failures: dict[str, list[float]] = {}
        # Only keys with something in flight are kept, so these stay as small as the traffic.
        self._clients_in_flight: dict[str, int] = {}
        self._names_in_flight: dict[str, int] = {}

    def _recent(self, client: str, now: float) -> list[float]:
        times = [t for t in self._failures.get(client, []) if now - t < self.window]
        if times:
            self._failures[client] = times
        else:
            self._failures.pop(client, None)
        return times

    def check(self, client: str) -> None:
        now = time.monotonic()
        times = self._recent(client, now)
        if len(times) >= self.max_failures:
            # Free again when enough of the window's failures have aged out of it.
            oldest_that_counts = times[len(times) - self.max_failures]
            raise too_many("web.too_many_sign_ins", oldest_that_counts + self.window - now)

    @contextmanager
    def attempt(self, client: str, username: str) -> Iterator[None]:
        """One sign-in attempt: refused (429) over the failure limit or when this client or this
        username already has its share of checks in flight; counted as a failure until
        :meth:`succeeded` takes it back, so parallel guesses cannot outrun the limit."""
        self.check(client)
        name = username.casefold()
        if self._clients_in_flight.get(client, 0) >= self.per_client:
            raise too_many("web.sign_ins_in_flight", IN_FLIGHT_RETRY_AFTER)
        if self._names_in_flight.get(name, 0) >= self.per_name:
            raise too_many("web.account_sign_ins_in_flight", IN_FLIGHT_RETRY_AFTER)
        _add(self._clients_in_flight, client, 1)
        _add(self._names_in_flight, name, 1)
        self.failed(client)
        try:
            yield
        finally:
            _add(self._clients_in_flight, client, -1)
            _add(self._names_in_flight, name, -1)

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


def _add(counts: dict[str, int], key: str, delta: int) -> None:
    count = counts.get(key, 0) + delta
    if count > 0:
        counts[key] = count
    else:
        counts.pop(key, None)
