"""Sending one webhook attempt, safely.

* Only https in production; http (and loopback receivers) in development and
  tests, for local receivers.
* The host is resolved here, every address it resolves to is checked
  (``domain.webhooks.refused_address_class``: loopback, private, link-local,
  metadata...), and the request goes to the checked address itself, with the
  host name in ``Host`` and in TLS (SNI and certificate check). A name that
  resolves to a public address when the endpoint is saved and to an internal
  one at delivery (DNS rebinding) is refused at delivery.
* Redirects are not followed (a 3xx is a failed attempt); the answer's body is
  read up to a small limit and the connection dropped; the whole attempt,
  resolving included, has one timeout.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx

from domain.webhooks import refused_address_class

Resolver = Callable[[str, int], Awaitable[list[str]]]


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


class ReceiverRefused(Exception):
    """The URL may not receive webhooks; ``code`` is stable, the message says why."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(message)


class ReceiverPolicy:
    def __init__(
        self, *, allow_local: bool, resolver: Resolver = system_resolver, resolve_timeout: float = 5.0
    ) -> None:
        self.allow_local = allow_local
        self._resolver = resolver
        # A name server that never answers must not hold a request (or an
        # attempt) for as long as the system resolver would wait.
        self.resolve_timeout = resolve_timeout

    def check_url(self, url: str) -> httpx.URL:
        """The URL's form: absolute, http(s), a host, no credentials."""
        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, TypeError, ValueError) as exc:
            raise ReceiverRefused("invalid_url", f"Not a valid URL: {exc}") from None
        if parsed.scheme not in ("https", "http") or not parsed.host:
            raise ReceiverRefused("invalid_url", "Use an absolute https:// URL.")
        if parsed.scheme == "http" and not self.allow_local:
            raise ReceiverRefused("insecure_url", "Webhook URLs must use https.")
        if parsed.userinfo:
            raise ReceiverRefused("invalid_url", "Credentials in the URL are not allowed.")
        if parsed.fragment:
            raise ReceiverRefused("invalid_url", "A fragment (#...) is never sent; remove it.")
        return parsed

    async def resolve(self, url: httpx.URL) -> str:
        """The address to connect to: every address the host resolves to must be
        allowed (so no answer of a round-robin can point inside)."""
        host = url.host
        port = url.port or (443 if url.scheme == "https" else 80)
        try:
            ipaddress.ip_address(host)
            addresses = [host]
        except ValueError:
            try:
                async with asyncio.timeout(self.resolve_timeout):
                    addresses = await self._resolver(host, port)
            except TimeoutError:
                raise ReceiverRefused(
                    "resolve_timeout",
                    f"{host} did not resolve within {self.resolve_timeout:g} s; try again, or check its DNS",
                ) from None
            except OSError as exc:
                raise ReceiverRefused("unresolvable", f"{host} does not resolve: {exc}") from None
        if not addresses:
            raise ReceiverRefused("unresolvable", f"{host} does not resolve")
        for address in addresses:
            refused = refused_address_class(address, allow_loopback=self.allow_local)
            if refused is not None:
                raise ReceiverRefused("address_refused", f"{host} resolves to {address}, a {refused} address")
        return addresses[0]


@dataclass(frozen=True, slots=True)
class AttemptResult:
    status_code: int | None
    latency_ms: float
    body: str | None
    error: str | None

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class WebhookSender:
    """One HTTP client per endpoint and host, so that a pooled connection made
    for one host name (its TLS session, its certificate) never carries another's
    requests."""

    _MAX_CLIENTS = 256

    def __init__(self, policy: ReceiverPolicy, *, timeout: float, body_limit: int, connections: int) -> None:
        self.policy = policy
        self._timeout = timeout
        self._body_limit = body_limit
        self._connections = connections
        self._clients: OrderedDict[str, httpx.AsyncClient] = OrderedDict()

    def _client(self, key: str) -> httpx.AsyncClient:
        client = self._clients.get(key)
        if client is None:
            client = httpx.AsyncClient(
                follow_redirects=False,
                trust_env=False,
                timeout=self._timeout,
                limits=httpx.Limits(max_connections=self._connections, max_keepalive_connections=8),
            )
            self._clients[key] = client
            while len(self._clients) > self._MAX_CLIENTS:
                _, old = self._clients.popitem(last=False)
                asyncio.get_running_loop().create_task(old.aclose())
        else:
            self._clients.move_to_end(key)
        return client

    async def send(self, endpoint_id: str, url: str, headers: dict[str, str], body: bytes) -> AttemptResult:
        started = time.perf_counter()

        def elapsed() -> float:
            return round((time.perf_counter() - started) * 1000, 2)

        try:
            async with asyncio.timeout(self._timeout):
                parsed = self.policy.check_url(url)
                address = await self.policy.resolve(parsed)
                target = parsed.copy_with(host=address)
                extensions = {"sni_hostname": parsed.host} if parsed.scheme == "https" else {}
                request_headers = {
                    **headers,
                    "Host": parsed.netloc.decode("ascii"),
                    "Accept-Encoding": "identity",
                    "User-Agent": "hotline400-webhooks/1",
                }
                client = self._client(f"{endpoint_id} {parsed.host}")
                async with client.stream(
                    "POST", target, content=body, headers=request_headers, extensions=extensions
                ) as response:
                    latency = elapsed()
                    received = bytearray()
                    async for chunk in response.aiter_raw():
                        received += chunk
                        if len(received) >= self._body_limit:
                            break
                text = bytes(received[: self._body_limit]).decode("utf-8", errors="replace")
                return AttemptResult(response.status_code, latency, text, None)
        except ReceiverRefused as exc:
            return AttemptResult(None, elapsed(), None, f"{exc.code}: {exc.message}")
        except TimeoutError:
            return AttemptResult(None, elapsed(), None, f"timeout: no answer within {self._timeout:g} s")
        except httpx.HTTPError as exc:
            return AttemptResult(None, elapsed(), None, f"{type(exc).__name__}: {str(exc)[:300]}")
        except OSError as exc:
            return AttemptResult(None, elapsed(), None, f"connection failed: {str(exc)[:300]}")

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()
