"""The webhook sender against real HTTP receivers on 127.0.0.1: which addresses
production refuses (at saving and again at delivery), redirects, timeouts,
truncated answers, and signatures checked by the standardwebhooks verifier.

DNS is the one thing faked: a resolver that answers what the test says, the
way a hostile or rebinding name server would."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks import WebhookVerificationError

from activities.webhook_http import ReceiverPolicy, ReceiverRefused, WebhookSender
from activities.webhooks import body_of, new_secret, signature, signing_keys
from api.errors import InvalidInput
from api.services.documents import DocumentCipher
from api.services.webhooks import check_url, receiver_policy
from app.settings import Settings
from tests.conftest import TEST_KEYS
from tests.webhook_receiver import Answer, Receiver, always


def resolving_to(*addresses: str):  # type: ignore[no-untyped-def]
    async def resolve(host: str, port: int) -> list[str]:
        return list(addresses)

    return resolve


PRODUCTION = ReceiverPolicy(allow_local=False, resolver=resolving_to("93.184.216.34"))

# Each class also as IPv6 addresses that lead to an IPv4 one of it: mapped
# (::ffff:), IPv4-compatible (::a.b.c.d), NAT64 (64:ff9b::/96) and 6to4 (2002::/16).
REFUSED = {
    "loopback": [
        "127.0.0.1",
        "127.8.9.10",
        "::1",
        "::ffff:127.0.0.1",
        "::127.0.0.1",
        "64:ff9b::7f00:1",
        "2002:7f00:1::1",
    ],
    # Python's "private" also covers the benchmarking and future-use ranges,
    # Teredo (2001::/32) and local-use NAT64 (64:ff9b:1::/48), whatever they embed.
    "private": [
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "fc00::1",
        "fd12:3456::1",
        "198.18.0.1",
        "240.0.0.1",
        "64:ff9b::a00:7",
        "2002:c0a8:101::1",
        "::10.0.0.7",
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",
        "64:ff9b:1::5db8:d822",
    ],
    "link_local": ["169.254.1.1", "fe80::1"],
    "metadata": [
        "169.254.169.254",
        "100.100.100.200",
        "fd00:ec2::254",
        "64:ff9b::a9fe:a9fe",
        "::ffff:169.254.169.254",
        "2002:a9fe:a9fe::1",
    ],
    "reserved": ["100.64.0.1", "100.127.255.1"],  # shared address space (carrier-grade NAT)
    "unspecified": ["0.0.0.0", "::"],
    "multicast": ["224.0.0.1"],
}


@pytest.mark.parametrize(
    ("address_class", "address"), [(c, a) for c, addresses in REFUSED.items() for a in addresses]
)
async def test_production_refuses_every_internal_address_class(address_class: str, address: str) -> None:
    # As a literal in the URL, and behind a name that resolves to it.
    literal = f"https://[{address}]/hook" if ":" in address else f"https://{address}/hook"
    for url, policy in (
        (literal, PRODUCTION),
        ("https://hooks.example.com/hook", ReceiverPolicy(allow_local=False, resolver=resolving_to(address))),
    ):
        with pytest.raises(ReceiverRefused) as refused:
            await policy.resolve(policy.check_url(url))
        assert refused.value.code == "address_refused", url
        assert address_class in refused.value.message, url


async def test_one_internal_answer_among_public_ones_is_enough_to_refuse() -> None:
    policy = ReceiverPolicy(allow_local=False, resolver=resolving_to("93.184.216.34", "10.0.0.7"))
    with pytest.raises(ReceiverRefused, match="private"):
        await policy.resolve(policy.check_url("https://hooks.example.com/"))
    mapped = ReceiverPolicy(allow_local=False, resolver=resolving_to("::ffff:127.0.0.1"))
    with pytest.raises(ReceiverRefused, match="loopback"):
        await mapped.resolve(mapped.check_url("https://hooks.example.com/"))


@pytest.mark.parametrize("address", ["64:ff9b::5db8:d822", "2002:5db8:d822::1", "::ffff:93.184.216.34"])
async def test_a_public_ipv4_address_written_as_ipv6_is_allowed(address: str) -> None:
    policy = ReceiverPolicy(allow_local=False, resolver=resolving_to(address))
    assert await policy.resolve(policy.check_url("https://hooks.example.com/")) == address


async def test_a_name_server_that_never_answers_is_a_422_naming_the_url_in_time(settings: Settings) -> None:
    async def never(host: str, port: int) -> list[str]:
        await asyncio.sleep(3600)
        return []

    assert receiver_policy(settings).resolve_timeout == settings.webhooks.resolve_timeout.total_seconds()
    policy = ReceiverPolicy(allow_local=False, resolver=never, resolve_timeout=0.2)
    started = time.monotonic()
    with pytest.raises(InvalidInput) as invalid:
        await check_url(policy, "https://slow-dns.example/hook")
    assert time.monotonic() - started < 2
    assert invalid.value.errors == [
        {
            "field": "url",
            "code": "resolve_timeout",
            "message": "slow-dns.example did not resolve within 0.2 s; try again, or check its DNS",
        }
    ]


async def test_production_needs_https_and_a_plain_url() -> None:
    assert await PRODUCTION.resolve(PRODUCTION.check_url("https://hooks.example.com/x")) == "93.184.216.34"
    for url, code in (
        ("http://hooks.example.com/x", "insecure_url"),
        ("ftp://hooks.example.com/x", "invalid_url"),
        ("https://user:pw@hooks.example.com/x", "invalid_url"),
        ("hooks.example.com/x", "invalid_url"),
    ):
        with pytest.raises(ReceiverRefused) as refused:
            PRODUCTION.check_url(url)
        assert refused.value.code == code, url
    # Saving an endpoint goes through the same check: a 422 naming the url.
    with pytest.raises(InvalidInput) as invalid:
        await check_url(
            ReceiverPolicy(allow_local=False, resolver=resolving_to("127.0.0.1")), "https://x.test/"
        )
    assert invalid.value.errors == [
        {
            "field": "url",
            "code": "address_refused",
            "message": "x.test resolves to 127.0.0.1, a loopback address",
        }
    ]


async def test_development_allows_http_on_loopback_only() -> None:
    dev = ReceiverPolicy(allow_local=True, resolver=resolving_to("10.0.0.1"))
    assert await dev.resolve(dev.check_url("http://127.0.0.1:8080/hook")) == "127.0.0.1"
    with pytest.raises(ReceiverRefused, match="private"):
        await dev.resolve(dev.check_url("http://lan-box.test/hook"))


async def test_a_name_rebound_to_an_internal_address_is_refused_at_delivery() -> None:
    """Public when the endpoint was saved, loopback when the message is sent:
    the sender resolves again, refuses, and the receiver sees nothing."""
    answers = iter([["93.184.216.34"], ["127.0.0.1"]])

    async def rebinding(host: str, port: int) -> list[str]:
        return next(answers)

    policy = ReceiverPolicy(allow_local=False, resolver=rebinding)
    async with Receiver() as receiver:
        url = f"https://rebind.example.com:{receiver.port}/hook"
        await check_url(policy, url)  # saved: fine
        sender = WebhookSender(policy, timeout=2, body_limit=64, connections=2)
        result = await sender.send("whe_x", url, {"webhook-id": "msg_1"}, b"{}")
        await sender.aclose()
    assert result.status_code is None and not result.succeeded
    assert result.error is not None and result.error.startswith("address_refused")
    assert receiver.received == []


async def test_redirects_are_not_followed_and_answers_are_truncated() -> None:
    async with Receiver() as elsewhere:
        redirect = always(302, headers={"Location": elsewhere.url}, body=b"moved " * 100)
        async with Receiver(redirect) as receiver:
            sender = WebhookSender(ReceiverPolicy(allow_local=True), timeout=2, body_limit=20, connections=2)
            result = await sender.send("whe_x", receiver.url, {"webhook-id": "msg_1"}, b"{}")
            await sender.aclose()
    assert (result.status_code, result.succeeded) == (302, False)
    assert result.body == ("moved " * 4)[:20]
    assert elsewhere.received == []


async def test_an_attempt_stops_at_its_timeout() -> None:
    async with Receiver(always(200, delay=5)) as receiver:
        sender = WebhookSender(ReceiverPolicy(allow_local=True), timeout=0.5, body_limit=20, connections=2)
        started = time.monotonic()
        result = await sender.send("whe_x", receiver.url, {}, b"{}")
        await sender.aclose()
    assert time.monotonic() - started < 2
    assert result.status_code is None and result.error is not None and result.error.startswith("timeout")


async def test_a_slow_trickle_cannot_outlast_the_timeout() -> None:
    async def trickle(n: int, headers: dict[str, str], body: bytes) -> Answer:
        return Answer(200, hang=True)

    async with Receiver(trickle) as receiver:
        sender = WebhookSender(ReceiverPolicy(allow_local=True), timeout=0.3, body_limit=20, connections=2)
        result = await sender.send("whe_x", receiver.url, {}, b"{}")
        await sender.aclose()
    assert result.error is not None and result.error.startswith("timeout")


def test_signatures_verify_with_each_key_and_only_with_them() -> None:
    old, old_raw = new_secret()
    new, new_raw = new_secret()
    payload = {
        "type": "application.rejected",
        "timestamp": "2026-12-01T09:00:00+08:00",
        "data": {"x": "中文"},
    }
    body = body_of(payload)
    sent_at = datetime.now(UTC)
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": signature("msg_1", sent_at.astimezone(), body, [new_raw, old_raw]),
    }
    import standardwebhooks

    for secret in (old, new):
        assert standardwebhooks.Webhook(secret).verify(body.encode(), headers) == payload
    with pytest.raises(WebhookVerificationError):
        standardwebhooks.Webhook(new_secret()[0]).verify(body.encode(), headers)
    with pytest.raises(WebhookVerificationError):
        standardwebhooks.Webhook(new).verify(body.replace("rejected", "approved").encode(), headers)


def test_the_previous_secret_signs_only_until_it_expires() -> None:
    import base64

    cipher = DocumentCipher([base64.b64decode(TEST_KEYS)])
    _, current = new_secret()
    _, previous = new_secret()
    now = datetime.now(UTC)
    current_key, current_blob = cipher.encrypt("whe_1", current)
    previous_key, previous_blob = cipher.encrypt("whe_1", previous)
    endpoint = {
        "id": "whe_1",
        "secret_key_id": current_key,
        "secret": current_blob,
        "previous_secret_key_id": previous_key,
        "previous_secret": previous_blob,
        "previous_secret_expires_at": now + timedelta(hours=24),
    }
    assert signing_keys(endpoint, cipher, now) == [current, previous]  # type: ignore[arg-type]
    assert signing_keys(endpoint, cipher, now + timedelta(hours=24, seconds=1)) == [current]  # type: ignore[arg-type]
