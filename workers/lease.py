"""A lease so that only one scheduler fires: Redis SET NX PX, or an OS file lock when embedded."""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import time
import uuid
from pathlib import Path
from typing import Protocol


class Lease(Protocol):
    def try_acquire(self) -> bool: ...
    def renew(self) -> bool: ...
    def release(self) -> None: ...


class FileLease:
    """An exclusive flock on a file; the OS drops it when the holder dies."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{socket.gethostname()}:{os.getpid()}\n".encode())
        self._fd = fd
        return True

    def renew(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


# Renew only if we still hold it; compare-and-set in one step on the server.
_RENEW = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end"
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"


class RedisLease:
    """A Redis key with a time-to-live; a dead holder's lease expires and another takes over."""

    def __init__(
        self, url: str, *, key: str = "undertow:scheduler:lease", ttl_ms: int = 30_000
    ) -> None:
        import redis

        self.client = redis.Redis.from_url(url, socket_timeout=5)
        self.key = key
        self.ttl_ms = ttl_ms
        self.token = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    def try_acquire(self) -> bool:
        # Redis down or restarting is "not acquired": the scheduler keeps waiting, it does not die.
        try:
            return bool(self.client.set(self.key, self.token, nx=True, px=self.ttl_ms))
        except Exception:
            return False

    def renew(self) -> bool:
        try:
            return bool(self.client.eval(_RENEW, 1, self.key, self.token, self.ttl_ms))
        except Exception:
            return False

    def release(self) -> None:
        # If this fails the lease simply expires by itself.
        with contextlib.suppress(Exception):
            self.client.eval(_RELEASE, 1, self.key, self.token)


def wait_for(lease: Lease, *, poll_s: float, stop: object | None = None) -> None:
    """Block until ``lease`` is ours."""
    while not lease.try_acquire():
        time.sleep(poll_s)
