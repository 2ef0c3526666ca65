"""Rendering: the Jinja2 environment, the page context, and how values are shown
(money, China time, durations, the translated names of states)."""

from __future__ import annotations

import contextvars
import hashlib
import json
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from web import i18n, labels
from web.http import LANGUAGE_COOKIE, Staff, console_settings
from web.i18n import N_

TEMPLATES = Path(__file__).resolve().parent / "templates"
STATIC = Path(__file__).resolve().parent / "static"
CHINA = timezone(timedelta(hours=8), "CST")  # China has one time zone and no daylight saving

_language: contextvars.ContextVar[i18n.Language] = contextvars.ContextVar("console_language")


def _gettext(message: str) -> str:
    return _language.get().gettext(message)


def _ngettext(singular: str, plural: str, n: int) -> str:
    return _language.get().ngettext(singular, plural, n)


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_callables(_gettext, _ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.filters.update(
        money=money,
        china_time=china_time,
        china_date=china_date,
        duration=duration,
        label=label,
        json_attr=lambda value: json.dumps(value, ensure_ascii=False, default=str),
    )
    return env


# --------------------------------------------------------------------------
# Language
# --------------------------------------------------------------------------


def language_code(request: Request) -> str:
    return i18n.pick(request.cookies.get(LANGUAGE_COOKIE), console_settings(request).default_language)


def gettext(request: Request) -> Callable[[str], str]:
    return i18n.language(language_code(request)).gettext


# --------------------------------------------------------------------------
# Values
# --------------------------------------------------------------------------


def money(fen: int | None) -> str:
    if fen is None:
        return "—"
    sign = "-" if fen < 0 else ""
    yuan, cents = divmod(abs(int(fen)), 100)
    return f"{sign}¥{yuan:,}.{cents:02d}"


def china_time(value: datetime | str | None, seconds: bool = False) -> str:
    """A time in China's zone, labelled with it (people elsewhere, and logs in UTC,
    must not read it as their own)."""
    if value is None or value == "":
        return "—"
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    shown = value.astimezone(CHINA).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")
    return _gettext(N_("%(time)s (UTC+08:00)")) % {"time": shown}


def china_date(value: datetime | None) -> str:
    return "—" if value is None else value.astimezone(CHINA).strftime("%Y-%m-%d")


def duration(seconds: float | None) -> str:
    """A span of time as people say it: "3 d 4 h", "5 h 12 min", "40 min"."""
    if seconds is None:
        return "—"
    minutes = int(abs(seconds) // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return _gettext(N_("%(days)d d %(hours)d h")) % {"days": days, "hours": hours}
    if hours:
        return _gettext(N_("%(hours)d h %(minutes)d min")) % {"hours": hours, "minutes": mins}
    return _gettext(N_("%(minutes)d min")) % {"minutes": mins}


# The names people read for the states the system stores (translated when shown).
LABELS: dict[str, str] = {
    # lifecycle
    "submitted": N_("Submitted"),
    "in_review": N_("In review"),
    "changes_requested": N_("Changes requested"),
    "awaiting_payment": N_("Awaiting payment"),
    "awaiting_verification": N_("Awaiting verification"),
    "awaiting_activation": N_("Awaiting activation"),
    "in_service": N_("In service"),
    "restricted": N_("Restricted"),
    "suspended": N_("Suspended"),
    "frozen": N_("Frozen"),
    "terminated": N_("Terminated"),
    "reclaimed": N_("Reclaimed"),
    "closed": N_("Closed"),
    # stages
    "apply": N_("Apply"),
    "audit": N_("Audit"),
    "allocate": N_("Allocate"),
    "verify": N_("Verify"),
    "activate": N_("Activate"),
    "active": N_("Active"),
    # statuses
    "awaiting_prepayment": N_("Awaiting prepayment"),
    "provisioning": N_("Provisioning"),
    "invalid": N_("Invalid"),
    "number_unavailable": N_("Number unavailable"),
    "rejected": N_("Rejected"),
    "abandoned": N_("Abandoned"),
    "withdrawn": N_("Withdrawn"),
    "prepayment_expired": N_("Prepayment expired"),
    "verification_failed": N_("Verification failed"),
    "verification_expired": N_("Verification expired"),
    "provisioning_failed": N_("Provisioning failed"),
    # waiting for
    "nothing": N_("Nothing"),
    "system": N_("System"),
    "operator_decision": N_("Operator decision"),
    "resubmission": N_("Resubmission"),
    "prepayment": N_("Prepayment"),
    "verification": N_("Verification"),
    "activation_time": N_("Activation time"),
    "carrier": N_("Carrier"),
    "official_calendar": N_("Official holiday schedule"),
    # service and arrears
    "quarantined": N_("Quarantined"),
    "released": N_("Released"),
    "none": N_("None"),
    "grace": N_("Grace period"),
    "current": N_("Current"),
    "overdue": N_("Overdue"),
    "billing": N_("Billing"),
    "arrears": N_("Arrears"),
    "realname": N_("Real-name registration"),
    "quarantine_end": N_("End of quarantine"),
    # carriers
    "china_unicom": N_("China Unicom"),
    "china_telecom": N_("China Telecom"),
    "china_mobile": N_("China Mobile"),
    # roles
    "operator": N_("Operator"),
    "admin": N_("Administrator"),
    "viewer": N_("Viewer"),
    "applicant": N_("Applicant"),
}


def label(value: Any, kind: str | None = None) -> str:
    """What people read for a stored code: of ``kind`` (labels.KINDS: codes of
    different kinds may be spelled alike), else a state, stage or role."""
    if value is None:
        return "—"
    text = str(value)
    table = labels.KINDS[kind] if kind else LABELS
    return _gettext(table[text]) if text in table else text


ENV = _environment()


# --------------------------------------------------------------------------
# Pages
# --------------------------------------------------------------------------


def console_url(request: Request, path: str, **query: Any) -> str:
    base = request.scope.get("root_path", "").rstrip("/") or "/console"
    params = {k: v for k, v in query.items() if v not in (None, "")}
    return f"{base}{path}" + (f"?{urlencode(params, doseq=True)}" if params else "")


@lru_cache(maxsize=64)
def static_version(path: str) -> str:
    """A digest of a static file, put in its URL: the browser keeps a file for a year
    and still fetches a new one as soon as it changes."""
    return hashlib.sha256((STATIC / path).read_bytes()).hexdigest()[:12]


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    lang = i18n.language(language_code(request))
    staff: Staff | None = getattr(request.state, "staff", None)
    token = _language.set(lang)
    try:
        html = ENV.get_template(template).render(
            request=request,
            me=staff,
            csrf_token=staff.session.csrf_token if staff else "",
            lang=lang,
            languages=i18n.LANGUAGES,
            url=lambda path, **q: console_url(request, path, **q),
            static=lambda path: console_url(request, f"/static/{path}", v=static_version(path)),
            path=request.url.path + (f"?{request.url.query}" if request.url.query else ""),
            **(context or {}),
        )
    finally:
        _language.reset(token)
    return HTMLResponse(html, status_code=status_code, headers=dict(headers or {}))


def error_page(
    request: Request,
    status: int,
    message: str,
    *,
    headers: Mapping[str, str] | None = None,
    errors: list[dict[str, Any]] | None = None,
) -> HTMLResponse:
    """The error, with each field at fault and what to do about it (a 422's
    detail alone says only "Invalid input")."""
    template = "_error.html" if request.headers.get("HX-Request") else "error.html"
    return render(
        request,
        template,
        {"status": status, "message": message, "errors": errors or []},
        status_code=status,
        headers=headers,
    )
