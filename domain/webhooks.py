"""Webhooks as rules: the published event-type catalogue, the retry schedule,
and which receiver addresses are allowed.

The catalogue maps each public type (``application.approved``) to the domain
events it is sent for (``ApplicationApproved``, from ``domain/timeline.py`` and
the service's ``ChangeKind``). One domain event may be several public types at
once (an approval also allocates the number and makes the prepayment due), the
way Stripe sends ``invoice.paid`` and ``invoice.payment_succeeded`` for one
payment: an endpoint gets one message per type it subscribed to.

Pure: no I/O, no clock, no randomness (the caller passes the random draw).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Final, NamedTuple

from domain.service_rules import ChangeKind
from domain.timeline import EventType

# "Deadline approaching" is not an event of a registration's stream: it comes
# from the deadline sweeper (its notices have a table of their own).
DEADLINE_APPROACHING: Final = "DeadlineApproaching"
DEADLINE_RECOMPUTED: Final = EventType.DEADLINE_RECOMPUTED.value
DEADLINE_AWAITING_CALENDAR: Final = EventType.DEADLINE_AWAITING_CALENDAR.value


class WebhookEventType(NamedTuple):
    type: str
    description: str
    sources: tuple[str, ...]


_E = EventType
_K = ChangeKind

CATALOGUE: Final[tuple[WebhookEventType, ...]] = (
    WebhookEventType("application.submitted", "An application was submitted and is in review.",
                     (_E.APPLICATION_SUBMITTED,)),
    WebhookEventType("application.refused", "An application was refused at submission (invalid, or its "
                     "number could not be held); `problems` says why.", (_E.APPLICATION_REFUSED,)),
    WebhookEventType("application.review_overdue", "The review target passed without a decision.",
                     (_E.REVIEW_OVERDUE,)),
    WebhookEventType("application.changes_requested", "An operator asked for changes: `fields` and "
                     "`documents` name what to fix, `resubmit_by` until when.", (_E.CHANGES_REQUESTED,)),
    WebhookEventType("application.resubmitted", "The changed application was resubmitted and is in "
                     "review again.", (_E.APPLICATION_RESUBMITTED,)),
    WebhookEventType("application.approved", "An operator approved the application.",
                     (_E.APPLICATION_APPROVED,)),
    WebhookEventType("application.rejected", "An operator rejected the application (final); "
                     "`reason_code` says why.", (_E.APPLICATION_REJECTED,)),
    WebhookEventType("application.abandoned", "No resubmission came within the window; the number was "
                     "released.", (_E.APPLICATION_ABANDONED,)),
    WebhookEventType("application.withdrawn", "The applicant withdrew; the number was released.",
                     (_E.APPLICATION_WITHDRAWN,)),
    WebhookEventType("number.allocated", "The held number was allocated and its fees fixed (with the "
                     "approval).", (_E.APPLICATION_APPROVED,)),
    WebhookEventType("number.lost", "The held number was taken before it could be allocated.",
                     (_E.NUMBER_LOST,)),
    WebhookEventType("prepayment.due", "The first prepayment is due, by `pay_by` (with the approval).",
                     (_E.APPLICATION_APPROVED,)),
    WebhookEventType("prepayment.received", "A payment towards the first prepayment was received.",
                     (_E.PAYMENT_RECEIVED,)),
    WebhookEventType("prepayment.expired", "The first prepayment did not arrive in time; the number was "
                     "released.", (_E.PREPAYMENT_EXPIRED,)),
    WebhookEventType("verification.passed", "Real-name verification passed.", (_E.VERIFICATION_PASSED,)),
    WebhookEventType("verification.failed", "Real-name verification failed; the number was released.",
                     (_E.VERIFICATION_FAILED,)),
    WebhookEventType("verification.expired", "Real-name verification was not completed in time.",
                     (_E.VERIFICATION_EXPIRED,)),
    WebhookEventType("provisioning.started", "The carrier is provisioning the number.",
                     (_E.PROVISIONING_STARTED,)),
    WebhookEventType("provisioning.failed", "The carrier could not provision the number.",
                     (_E.PROVISIONING_FAILED,)),
    WebhookEventType("number.activated", "The number is in service.", (_E.NUMBER_ACTIVATED,)),
    WebhookEventType("bill.issued", "A billing cycle was charged to the prepaid balance.", (_K.BILLED,)),
    WebhookEventType("payment.received", "A payment was credited to the prepaid balance.",
                     (_K.PAYMENT_RECEIVED,)),
    WebhookEventType("arrears.stage_changed", "Arrears moved on (grace, restricted, suspended, frozen, "
                     "reclaimed) or were cleared.",
                     (_K.ARREARS_GRACE, _K.ARREARS_RESTRICTED, _K.ARREARS_SUSPENDED, _K.ARREARS_FROZEN,
                      _K.RECLAIMED, _K.ARREARS_CLEARED)),
    WebhookEventType("realname.stage_changed", "The real-name registration became overdue, was "
                     "confirmed, or its hold moved on.",
                     (_K.REALNAME_OVERDUE, _K.REALNAME_RESTRICTED, _K.REALNAME_SUSPENDED,
                      _K.REALNAME_CONFIRMED)),
    WebhookEventType("service.restricted", "The number was restricted (arrears or real-name).",
                     (_K.ARREARS_RESTRICTED, _K.REALNAME_RESTRICTED)),
    WebhookEventType("service.suspended", "The number was suspended (arrears, real-name or an operator).",
                     (_K.ARREARS_SUSPENDED, _K.REALNAME_SUSPENDED, _K.OPERATOR_SUSPENDED)),
    WebhookEventType("service.frozen", "The number was frozen for arrears.", (_K.ARREARS_FROZEN,)),
    WebhookEventType("service.resumed", "An operator lifted their suspension (other holds may remain: "
                     "see `service_state`).", (_K.OPERATOR_RESUMED,)),
    WebhookEventType("service.terminated", "The holder terminated the number; it is in quarantine.",
                     (_K.TERMINATED,)),
    WebhookEventType("number.reclaimed", "The number was reclaimed for arrears; it is in quarantine.",
                     (_K.RECLAIMED,)),
    WebhookEventType("number.released", "The quarantine ended and the number went back to the pool.",
                     (_K.RELEASED,)),
    WebhookEventType("details.change_reported", "A change of registered details was reported.",
                     (_K.DETAILS_CHANGE_REPORTED,)),
    WebhookEventType("deadline.approaching", "A deadline of the registration (`kind`) falls within the "
                     "notice period.", (DEADLINE_APPROACHING,)),
    WebhookEventType("deadline.recomputed", "A working-day deadline was recomputed after the official "
                     "holiday schedule of a year was loaded: `details` has `deadline_kind`, `old_at`, "
                     "`new_at` and `calendar_version`.", (DEADLINE_RECOMPUTED,)),
    WebhookEventType("deadline.awaiting_calendar", "The resubmission window fell due on a provisional count "
                     "(a year it crossed has no official holiday schedule, `provisional_years`): the "
                     "application stays open, a resubmission is still accepted, until the schedule is loaded "
                     "and the deadline recomputed.", (DEADLINE_AWAITING_CALENDAR,)),
)  # fmt: skip

EVENT_TYPES: Final[Mapping[str, WebhookEventType]] = {t.type: t for t in CATALOGUE}

# Why an endpoint is disabled: by its owner, because it answered 410 Gone, or
# because nothing could be delivered to it for a whole retry window.
DISABLED_REASONS: Final = ("owner", "gone", "failing")


def routes_for(event_types: Iterable[str]) -> dict[str, list[str]]:
    """``{domain event type: [public types]}`` for an endpoint subscribed to
    ``event_types``, each list in catalogue order (the order an endpoint gets
    the messages of one event in). Unknown types raise KeyError."""
    wanted = set(event_types)
    unknown = wanted - EVENT_TYPES.keys()
    if unknown:
        raise KeyError(f"unknown webhook event types: {sorted(unknown)}")
    routes: dict[str, list[str]] = {}
    for entry in CATALOGUE:
        if entry.type in wanted:
            for source in entry.sources:
                routes.setdefault(str(source), []).append(entry.type)
    return routes


# --------------------------------------------------------------------------
# Retries
# --------------------------------------------------------------------------


class RetrySchedule(NamedTuple):
    initial: timedelta
    max_interval: timedelta
    window: timedelta
    jitter: float

    def nominal_delay(self, failures: int) -> timedelta:
        """The wait after the ``failures``-th failed attempt, before jitter."""
        # Doubling stops once past the cap, so a large count cannot overflow.
        delay = self.initial
        for _ in range(failures - 1):
            if delay >= self.max_interval:
                break
            delay *= 2
        return min(delay, self.max_interval)

    def next_attempt(
        self, failures: int, now: datetime, window_start: datetime, draw: float
    ) -> datetime | None:
        """When to try again after ``failures`` failed attempts, or None when that
        would fall outside the retry window. ``draw`` is uniform in [0, 1): the
        delay is spread over +/- ``jitter`` so receivers coming back from an
        outage are not hit by every sender at once."""
        spread = 1 + self.jitter * (2 * draw - 1)
        at = now + self.nominal_delay(failures) * spread
        return at if at <= window_start + self.window else None


def schedule_table(schedule: RetrySchedule) -> list[tuple[int, timedelta, timedelta]]:
    """(attempt, nominal wait before it, nominal time since the first attempt) for
    every attempt within the window: what docs/webhooks.md shows."""
    rows = [(1, timedelta(0), timedelta(0))]
    elapsed = timedelta(0)
    failures = 1
    while True:
        wait = schedule.nominal_delay(failures)
        if elapsed + wait > schedule.window:
            return rows
        elapsed += wait
        failures += 1
        rows.append((failures, wait, elapsed))


# --------------------------------------------------------------------------
# Receiver addresses
# --------------------------------------------------------------------------

# Cloud metadata services that answer on addresses not all of which are
# private or link-local (Alibaba Cloud's is in the shared CGNAT range).
METADATA_ADDRESSES: Final = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "100.100.100.200", "192.0.0.192", "fd00:ec2::254")
)


# Prefixes whose addresses carry an IPv4 address the packets end up at:
# NAT64 (RFC 6052, the well-known prefix: the last 32 bits) and the
# deprecated IPv4-compatible form (``::a.b.c.d``). IPv4-mapped (``::ffff:``),
# 6to4 (``2002::/16``) and Teredo (``2001::/32``) are read by ``ipaddress``.
NAT64_WELL_KNOWN: Final = ipaddress.IPv6Network("64:ff9b::/96")
IPV4_COMPATIBLE: Final = ipaddress.IPv6Network("::/96")
# NAT64 for local use (RFC 8215): where it leads is the local network's choice.
NAT64_LOCAL_USE: Final = ipaddress.IPv6Network("64:ff9b:1::/48")


def _low_32_bits(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address:
    return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)


def _translated(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for, where the IPv6 form is only
    a way of writing it (mapped, NAT64, IPv4-compatible)."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in NAT64_WELL_KNOWN:
        return _low_32_bits(ip)
    # :: and ::1 are IPv6's own unspecified and loopback addresses.
    if ip in IPV4_COMPATIBLE and int(ip) > 1:
        return _low_32_bits(ip)
    return None


def _tunnelled(ip: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address, ...]:
    """The IPv4 addresses a tunnelled IPv6 address reaches through: the 6to4
    router, or the Teredo server and client."""
    if ip.sixtofour is not None:
        return (ip.sixtofour,)
    if ip.teredo is not None:
        return ip.teredo
    return ()


def refused_address_class(address: str, *, allow_loopback: bool = False) -> str | None:
    """Why a receiver may not be at ``address`` (an IP literal), or None if it may.

    Anything not globally routable is refused: loopback, private, link-local,
    shared (CGNAT), multicast, reserved, unspecified, and the metadata services.
    An IPv6 address that carries an IPv4 one is judged by it: written as IPv6
    (``::ffff:127.0.0.1``, ``::127.0.0.1``) or translated by NAT64
    (``64:ff9b::a9fe:a9fe``), as that IPv4 address; tunnelled by 6to4
    (``2002:7f00:1::1``) or Teredo, by the IPv4 addresses it goes through as
    well as by itself."""
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address):
        if ip in NAT64_LOCAL_USE:
            return "private"
        translated = _translated(ip)
        if translated is not None:
            ip = translated
        else:
            for inner in _tunnelled(ip):
                refused = _refused_class(inner, allow_loopback)
                if refused is not None:
                    return refused
    return _refused_class(ip, allow_loopback)


def _refused_class(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, allow_loopback: bool) -> str | None:
    if ip in METADATA_ADDRESSES:
        return "metadata"
    if ip.is_loopback:
        return None if allow_loopback else "loopback"
    if ip.is_link_local:
        return "link_local"
    if ip.is_multicast:
        return "multicast"
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_private:
        return "private"
    if not ip.is_global:
        return "reserved"
    return None
