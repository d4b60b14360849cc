"""Password hashing (argon2, via argon2-cffi) and random tokens."""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
import threading
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from .errors import Busy

_hasher = PasswordHasher()
MIN_PASSWORD_LENGTH = 8


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


#: argon2 costs ~0.3 s of CPU per call by design (and hashes 4 lanes in threads of its own).
#: It runs in this small pool, never on the event loop that forwards media; argon2-cffi
#: releases the GIL while it hashes; callers queue beyond two at a time.
def _lower_priority() -> None:
    """Pool threads run at nice 10 (Linux threads are scheduled alone; libargon2's lane threads
    inherit it): under CPU contention the event loop forwarding media wins, sign-ins wait."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
    except (AttributeError, OSError):  # not Linux, or not permitted: run at normal priority
        pass


_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="argon2", initializer=_lower_priority)
#: More queued hashes than this are refused (an overload of sign-ins must not queue for minutes).
MAX_QUEUED = 64
_queued = 0
#: Verified when the username is unknown or disabled, so that such a sign-in costs what a real
#: one costs and response times do not tell which usernames exist.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


async def _in_pool(fn, *args):  # type: ignore[no-untyped-def]
    global _queued
    if _queued >= MAX_QUEUED:
        raise Busy("directory.busy")
    _queued += 1
    try:
        return await asyncio.get_running_loop().run_in_executor(_pool, fn, *args)
    finally:
        _queued -= 1


async def hash_password_async(password: str) -> str:
    return str(await _in_pool(hash_password, password))


async def verify_password_async(password_hash: str | None, password: str) -> bool:
    """Verify off the event loop; ``None`` (no such account) costs the same and fails."""
    ok = await _in_pool(verify_password, password_hash or _DUMMY_HASH, password)
    return bool(ok) and password_hash is not None


def new_token() -> str:
    """A URL-safe secret with 256 bits of entropy."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """Tokens are stored hashed: a leaked database does not sign anyone in."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_password() -> str:
    return secrets.token_urlsafe(12)
