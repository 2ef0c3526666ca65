"""Webhooks as rules: the published event-type catalogue, the retry schedule,
and which receiver addresses are allowed. (What a "deadline approaching" is
about is the registration's ``next_deadline_kind``, domain/timeline.py.)

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

# Sources that are not events of a registration's stream. "Deadline approaching"
# comes from the deadline sweeper (its notices have a table of their own);
# DeadlineRecomputed is a domain event type still to come, listed so that it is
# delivered from the day it is first appended.
DEADLINE_APPROACHING: Final = "DeadlineApproaching"
DEADLINE_RECOMPUTED: Final = "DeadlineRecomputed"


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
    WebhookEventType("deadline.recomputed", "A deadline was recomputed (e.g. after a change of the "
                     "working-day calendar).", (DEADLINE_RECOMPUTED,)),
)  # fmt: skip

EVENT_TYPES: Final[Mapping[str, WebhookEventType]] = {t.type: t for t in CATALOGUE}


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


def refused_address_class(address: str, *, allow_loopback: bool = False) -> str | None:
    """Why a receiver may not be at ``address`` (an IP literal), or None if it may.

    Anything not globally routable is refused: loopback, private, link-local,
    shared (CGNAT), multicast, reserved, unspecified, and the metadata services.
    An IPv4 address written as IPv6 (``::ffff:127.0.0.1``) is judged as IPv4."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
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
