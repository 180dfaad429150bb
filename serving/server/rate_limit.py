"""Per-client rate limits and quotas, against a client copying the model by querying it as fast as
the server answers (model extraction). Off unless --rate_limit_per_second is set.

Each client has two token buckets: one refills at `rate` requests a second and holds `burst`
(short bursts pass, a steady flood is cut to the rate); the other, the quota, holds `quota`
requests and refills over `quota_seconds` (at most `quota` a day, by default). A request takes a
token from both or is refused with TF Serving's RESOURCE_EXHAUSTED (HTTP 429) and a plain
message saying when to retry; nothing waits, so a throttled client never hangs.

A client is its address (an IPv6 address by its /64 network, which one subscriber usually holds
whole; an IPv4-mapped IPv6 address as the IPv4 one), or the value of `key_header` (REST header /
gRPC metadata, e.g. an API key that an authenticating proxy in front has checked) when the request
carries one. The server does not check keys itself: with `key_header` set, a client reaching the
server directly can send a new key with each request, so set it only when clients reach the server
through such a proxy alone. At most `max_clients` buckets are kept (the least recently used are
dropped and start again full, quota included: a client cycling through that many addresses can
reset them). Limits:
- each request costs one token, whatever its rows (`--max_batch_rows` bounds those);
- the quota is a bucket too: a client that used it up gets it back steadily over the period, so
  within one period it can send up to twice the quota at worst.
"""

import ipaddress
import math
import threading
import time
import urllib.parse
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Optional

import grpc

from serving.server.errors import ServingError

DEFAULT_QUOTA_SECONDS = 86400.0
DEFAULT_MAX_CLIENTS = 100_000


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    def __init__(
        self,
        rate: float,
        burst: int,
        quota: int = 0,
        quota_seconds: float = DEFAULT_QUOTA_SECONDS,
        key_header: Optional[str] = None,
        max_clients: int = DEFAULT_MAX_CLIENTS,
        clock: Callable[[], float] = time.monotonic,
    ):
        if not (rate > 0 and math.isfinite(rate)):
            raise ValueError(f"the rate limit must be a positive number of requests a second; got {rate}")
        if burst < 1:
            raise ValueError(f"the burst must be at least 1 request; got {burst}")
        if quota < 0 or (quota and not quota_seconds > 0):
            raise ValueError(f"the quota must be 0 (none) or a positive count over a positive period; got {quota}")
        self.rate, self.burst, self.quota, self.quota_seconds = rate, burst, quota, quota_seconds
        self.key_header = key_header.lower() if key_header else None
        self.max_clients = max_clients
        self._clock = clock
        self._buckets: "OrderedDict[str, tuple]" = OrderedDict()  # client -> (rate bucket, quota bucket)
        self._lock = threading.Lock()

    def client(self, address: str, headers) -> str:
        """The client a request counts against: its key header's value when it has one, else its address."""
        if self.key_header and headers is not None:
            key = headers.get(self.key_header)
            if key:
                return "key:" + str(key)[:200]
        return "address:" + client_address(address)

    def check(self, client: str) -> None:
        """Takes one request from the client's buckets, or raises RESOURCE_EXHAUSTED saying when to retry."""
        with self._lock:
            now = self._clock()  # inside the lock: buckets see time move forward only
            buckets = self._buckets.get(client)
            if buckets is None:
                buckets = (_Bucket(self.burst, now), _Bucket(self.quota, now) if self.quota else None)
                self._buckets[client] = buckets
                while len(self._buckets) > self.max_clients:
                    self._buckets.popitem(last=False)
            else:
                self._buckets.move_to_end(client)
            per_second, quota = buckets
            _refill(per_second, self.rate, self.burst, now)
            if quota is not None:
                _refill(quota, self.quota / self.quota_seconds, self.quota, now)
            if quota is not None and quota.tokens < 1:
                wait = (1 - quota.tokens) * self.quota_seconds / self.quota
                raise _refused("quota", f"quota of {self.quota} requests per {self.quota_seconds:g} s used up", wait)
            if per_second.tokens < 1:
                wait = (1 - per_second.tokens) / self.rate
                raise _refused(
                    "rate", f"rate limit of {self.rate:g} requests a second (burst {self.burst}) reached", wait
                )
            per_second.tokens -= 1
            if quota is not None:
                quota.tokens -= 1


def client_address(address: str) -> str:
    """One client's address: IPv4 as is, an IPv4-mapped IPv6 address as its IPv4, IPv6 by its /64
    network; anything else (a Unix socket's peer) as given. Accepts gRPC's quoted brackets too."""
    text = urllib.parse.unquote(address).strip("[]")
    try:
        ip = ipaddress.ip_address(text.split("%", 1)[0])  # without an IPv6 zone
    except ValueError:
        return text
    if ip.version == 6 and ip.ipv4_mapped:
        return str(ip.ipv4_mapped)
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def _refill(bucket: _Bucket, rate: float, capacity: float, now: float) -> None:
    bucket.tokens = min(capacity, bucket.tokens + (now - bucket.updated) * rate)
    bucket.updated = now


class Throttled(ServingError):
    """RESOURCE_EXHAUSTED (HTTP 429) for a client over its rate or quota; `limit` says which."""

    def __init__(self, limit: str, message: str, retry_after: int):
        super().__init__(grpc.StatusCode.RESOURCE_EXHAUSTED, message)
        self.limit = limit
        self.retry_after = retry_after  # whole seconds, for HTTP's Retry-After


def _refused(limit: str, what: str, wait: float) -> Throttled:
    return Throttled(limit, f"{what}; retry in {wait:.2f} s", max(1, math.ceil(wait)))
