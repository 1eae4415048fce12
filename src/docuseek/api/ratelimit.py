"""Failed authentications per client address: a token bucket each, in process.

No library: the ones for FastAPI (slowapi and the like) limit requests by route, before
the handler runs; this limit counts only failures, which are known after the key lookup,
so valid keys never spend from it. A few lines of token bucket do exactly that.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict


class FailureLimiter:
    """`per_minute` failures per address, in bursts of up to `per_minute`."""

    def __init__(self, per_minute: int, max_addresses: int = 10_000) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0  # tokens per second
        self.max_addresses = max_addresses
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def _tokens(self, address: str, now: float) -> float:
        tokens, at = self._buckets.get(address, (self.capacity, now))
        return min(self.capacity, tokens + (now - at) * self.rate)

    def retry_after(self, address: str) -> int | None:
        """Seconds until this address may fail again, or None when it may now."""
        with self._lock:
            tokens = self._tokens(address, time.monotonic())
        if tokens >= 1:
            return None
        return max(1, math.ceil((1 - tokens) / self.rate))

    def failed(self, address: str) -> None:
        now = time.monotonic()
        with self._lock:
            tokens = self._tokens(address, now)
            self._buckets[address] = (max(tokens - 1, 0.0), now)
            self._buckets.move_to_end(address)
            # Forget the longest-quiet addresses first: memory stays bounded under a
            # spray from many addresses (a forgotten one starts with a full bucket).
            while len(self._buckets) > self.max_addresses:
                self._buckets.popitem(last=False)
