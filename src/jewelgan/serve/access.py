"""Who may call the API: API keys kept hashed at rest, and a per-key rate limit.

The keys file holds one `name:sha256-hex` line per key (comments with #). A key is 32 random bytes,
so a plain SHA-256 is enough to make a stolen file useless (no dictionary to try), and comparing
hashes with hmac.compare_digest leaks no timing. `jewelgan serve-keys add NAME --file keys.txt`
makes a key, stores its hash and prints the key once.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from pathlib import Path

KEY_PREFIX = "jg_"
NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class KeysFileError(ValueError):
    """A keys file that cannot be read or has a malformed line (names the file and line)."""


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def read_keys(path: str | Path) -> dict[str, str]:
    """hash -> key name."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise KeysFileError(f"{path}: cannot read the keys file ({e.strerror})") from None
    keys: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, _, digest = line.partition(":")
        if not NAME_RE.match(name) or not re.fullmatch(r"[0-9a-f]{64}", digest):
            raise KeysFileError(f"{path}:{number}: expected name:sha256-hex (make keys with `jewelgan serve-keys add`)")
        keys[digest] = name
    if not keys:
        raise KeysFileError(f"{path}: no keys in the file (add one with `jewelgan serve-keys add NAME --file {path}`)")
    return keys


def add_key(path: str | Path, name: str) -> str:
    """Make a new key called `name`, append its hash to the keys file, return the key (shown once)."""
    if not NAME_RE.match(name):
        raise KeysFileError(f"key name {name!r}: use 1-64 letters, digits, '_', '.' or '-'")
    path = Path(path)
    if path.is_file() and name in read_keys(path).values():
        raise KeysFileError(f"{path}: a key called {name!r} exists already")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        f.write(f"{name}:{hash_key(key)}\n")
    path.chmod(0o600)
    return key


class KeyRing:
    """Checks presented keys against the hashed ones."""

    def __init__(self, hashes: dict[str, str]):
        self.hashes = hashes

    def identify(self, key: str | None) -> str | None:
        """The key's name, or None for a missing or unknown key."""
        if not key:
            return None
        digest = hash_key(key)
        for known, name in self.hashes.items():
            if hmac.compare_digest(known, digest):
                return name
        return None


class RateLimiter:
    """A token bucket per caller: `rate` requests a second on average, bursts of up to `burst`."""

    def __init__(self, rate: float, burst: int):
        self.rate, self.burst = float(rate), int(burst)
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def allow(self, caller: str) -> float:
        """0 if the call may go ahead, else the seconds until it would."""
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(caller, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                self._buckets[caller] = (tokens - 1.0, now)
                return 0.0
            self._buckets[caller] = (tokens, now)
            return (1.0 - tokens) / self.rate
