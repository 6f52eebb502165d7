"""The city's ``RateLimitingMiddleware``, reproduced exactly.

Per client IP a cache entry ``{count}`` lives for ``ttl`` seconds. Every
counted request rewrites the entry with a fresh TTL; once ``count >= max`` the
entry is no longer touched, so the block lasts until ``ttl`` seconds after
the last *counted* request. Limited requests get 429 without any
``X-RateLimit-*`` header.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mta_client.clock import Clock

__all__ = ["RateLimiter"]


@dataclass(slots=True)
class _Entry:
    count: int
    expires_at: float


class RateLimiter:
    """Counts requests per IP on the simulator's clock."""

    def __init__(self, clock: Clock, *, max_requests: int = 60, ttl: int = 60) -> None:
        """Configure the limit (city defaults: 60 requests, 60 s TTL)."""
        self.clock = clock
        self.max_requests = max_requests
        self.ttl = ttl
        self._entries: dict[str, _Entry] = {}

    def hit(self, ip: str) -> dict[str, str] | None:
        """Count a request; return the headers to add, or ``None`` if limited."""
        now = self.clock.time()
        entry = self._entries.get(ip)
        if entry is not None and now >= entry.expires_at:
            del self._entries[ip]
            entry = None
        count = entry.count if entry is not None else 0
        if count >= self.max_requests:
            return None
        count += 1
        self._entries[ip] = _Entry(count=count, expires_at=now + self.ttl)
        return {
            "X-RateLimit-Limit": str(self.max_requests),
            "X-RateLimit-Remaining": str(max(0, self.max_requests - count)),
            "X-RateLimit-Reset": str(int(now) + self.ttl),
        }

    def count(self, ip: str) -> int:
        """Return the current count of an IP (0 when its entry expired)."""
        entry = self._entries.get(ip)
        if entry is None or self.clock.time() >= entry.expires_at:
            return 0
        return entry.count

    def reset(self) -> None:
        """Forget every entry."""
        self._entries.clear()
