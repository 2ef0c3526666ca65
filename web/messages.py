"""How the console says what went wrong, in the reader's language.

The API's errors are English sentences with a stable code (``ApiError.code``,
and a code per field at fault). In English the console shows the API's own
sentence, which is the most specific; in another language it shows the
translation of the code, and the API's sentence only for a code it does not
know yet (a new one shows up in English rather than not at all). Field names are
shown as people read them (``labels.FIELDS``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from fastapi import Request
from pydantic import ValidationError

from api.errors import ApiError
from web import labels, views
from web.i18n import N_

# The API's errors, by their code.
ERRORS = {
    "already_decided": N_("Someone else acted on this application first; your action was not applied."),
    "wrong_stage": N_("This is not possible in the application's current state."),
    "invalid_input": N_("Some fields are not valid."),
    "service_unavailable": N_("A backing service is unavailable; retry shortly."),
    "too_many_requests": N_("Too many requests; retry in a moment."),
    "not_found": N_("Not found."),
    "forbidden": N_("Your role may not do this."),
    "conflict": N_("This conflicts with the current state."),
    "bad_request": N_("The request could not be understood."),
    "cursor_mismatch": N_("This next-page link was made for other filters: search again."),
    "username_taken": N_("This username is taken."),
    "delivery_pending": N_("This message is still being delivered; it cannot be sent again yet."),
    "endpoint_disabled": N_("The endpoint is disabled: its owner must enable it before anything is sent."),
    "document_replaced": N_("This document was replaced by a newer one."),
    "idempotency_key_reused": N_("This request key was already used for another request."),
    "unauthorized": N_("Sign in again."),
    "payload_too_large": N_("Too large."),
    "unsupported_media_type": N_("This file type is not accepted."),
    "internal_error": N_("Something went wrong."),
    "version_conflict": N_("Someone else changed this first: reload and try again."),
    "nothing_to_review": N_("Nothing waits for staff on this application: there is nothing to claim."),
}
# A few errors share a code but not a meaning: these, by the API's sentence.
DETAILS = {
    "The number is being activated; retry in a moment": N_(
        "The number is being activated; retry in a moment."
    ),
    "No worker is taking registration work right now; retry shortly": N_(
        "No worker is taking registration work right now; retry shortly."
    ),
    "The workflow service (Temporal) is not answering; retry shortly": N_(
        "The workflow service is not answering; retry shortly."
    ),
}
# What is wrong with a field, by the field error's code (the API's, and pydantic's).
FIELD_ERRORS = {
    "missing": N_("Required."),
    "required": N_("Required."),
    "reason_required": N_("Say why (1 to 1000 characters)."),
    "not_allowed": N_("Not allowed with this choice."),
    "invalid_choice": N_("Not one of the allowed values."),
    "enum": N_("Not one of the allowed values."),
    "literal_error": N_("Not one of the allowed values."),
    "invalid_character": N_("Contains a character that cannot be stored (such as NUL)."),
    "hidden_characters": N_("Contains invisible formatting characters (such as a direction override)."),
    "invalid_length": N_("Wrong length."),
    "too_long": N_("Too long."),
    "string_too_long": N_("Too long."),
    "too_short": N_("Too short."),
    "string_too_short": N_("Too short."),
    "too_many": N_("Too many."),
    "too_few": N_("Too few."),
    "invalid_format": N_("Wrong format."),
    "string_pattern_mismatch": N_("Wrong format."),
    "out_of_range": N_("Out of range."),
    "invalid_cursor": N_("This page link is not valid: search again."),
    "cursor_mismatch": N_("This next-page link was made for other filters: search again."),
    "invalid_role": N_("One of operator, administrator, viewer."),
    "not_revealable": N_("This field cannot be revealed."),
    "in_future": N_("Cannot be in the future."),
    "in_past": N_("Cannot be in the past."),
    "timezone_required": N_("Give the time with its time zone."),
    "datetime_from_date_parsing": N_("Not a date and time."),
    "datetime_parsing": N_("Not a date and time."),
    "invalid_check_digit": N_("The check character does not match."),
    "invalid_phone": N_("Not a valid phone number."),
    "invalid_birth_date": N_("The date of birth in the ID number is not valid."),
    "invalid_region": N_("The region code in the ID number is not valid."),
    "duplicate": N_("Named twice."),
    "missing_document": N_("A required document is missing."),
    "unknown_document_kind": N_("Unknown document kind."),
    "unsupported_content_type": N_("This file type is not accepted."),
    "unknown_carrier": N_("Unknown carrier."),
    "unknown_company_type": N_("Unknown company type."),
    "unknown_industry": N_("Unknown industry."),
    "unknown_package": N_("Unknown package."),
    "unknown_field": N_("Unknown field."),
    "unchanged": N_("Not changed, though a change was asked for."),
    "too_far_ahead": N_("Too far ahead."),
    "same_as_legal_representative": N_("The agent cannot be the legal representative."),
    "service_number_not_allowed": N_("A service number cannot be used here."),
}
# Where the field says more than the code alone.
SPECIFIC = {
    ("reason_code", "missing"): N_("Choose why the application is rejected."),
    ("reason_code", "not_allowed"): N_("A rejection reason goes with a rejection only."),
    ("fields", "missing"): N_("Choose the fields or the documents to change (or both)."),
    ("fields", "not_allowed"): N_("Fields to change go with a change request only."),
    ("documents", "not_allowed"): N_("Documents to replace go with a change request only."),
}
_INDEX = re.compile(r"\[\d+\]")


def _english(request: Request) -> bool:
    return views.language_code(request) == "en"


def field_label(field: str, gettext: Callable[[str], str]) -> str:
    """A field as people read it: ``values.company_name`` is the company name,
    ``destination_numbers[1]`` the destination numbers; an unknown one as named."""
    name = _INDEX.sub("", field).removeprefix("values.")
    return gettext(labels.FIELDS[name]) if name in labels.FIELDS else field


def field_errors(request: Request, errors: Sequence[Mapping[str, Any]] | None) -> list[dict[str, str]]:
    """Each field at fault: its name, how people read it, and what is wrong."""
    _ = views.gettext(request)
    english = _english(request)
    shown = []
    for error in errors or []:
        field, code = str(error.get("field", "")), str(error.get("code", ""))
        message = str(error.get("message", ""))
        key = (_INDEX.sub("", field), code)
        if not english and key in SPECIFIC:
            message = _(SPECIFIC[key])
        elif not english and code in FIELD_ERRORS:
            message = _(FIELD_ERRORS[code])
        shown.append({"field": field, "label": field_label(field, _) if field else "", "message": message})
    return shown


def headline(request: Request, exc: ApiError) -> str:
    if _english(request):
        return exc.detail
    _ = views.gettext(request)
    if exc.detail in DETAILS:
        return _(DETAILS[exc.detail])
    return _(ERRORS[exc.code]) if exc.code in ERRORS else exc.detail


def lines(request: Request, exc: ApiError) -> list[str]:
    """The error as lines of text: what happened, then each field at fault (but
    one that only says the same again)."""
    said = headline(request, exc)
    fields = field_errors(request, exc.errors)
    return [said, *_lines(request, [e for e in fields if e["message"] != said])]


def field_lines(request: Request, errors: Sequence[Mapping[str, Any]] | None) -> list[str]:
    """Fields at fault as lines of text ("Company name: Too long.")."""
    return _lines(request, field_errors(request, errors))


def validation_lines(request: Request, exc: ValidationError) -> list[str]:
    """A form the API's model refused (pydantic), as the API would have said it."""
    errors = [
        {
            "field": ".".join(str(p) for p in e.get("loc", ())),
            "code": e.get("type", ""),
            "message": str(e.get("msg", "")).removeprefix("Value error, "),
        }
        for e in exc.errors()
    ]
    return field_lines(request, errors)


def _lines(request: Request, errors: list[dict[str, str]]) -> list[str]:
    named = views.gettext(request)(N_("%(field)s: %(message)s"))
    return [
        named % {"field": e["label"], "message": e["message"]} if e["label"] else e["message"] for e in errors
    ]
