"""The application form and the rules it must pass before it is submitted.

Two layers, on purpose:

* The pydantic models enforce only *format* invariants that never change:
  check characters, phone number shapes, timezone-aware datetimes; and they
  normalise (upper-case codes, digits-only phone numbers). The models double as
  API and Temporal payloads, and a payload recorded in workflow history must
  still decode after a policy changes, so policy does not live in them.
  Their validators are pure computation (no file reads, no clock), so they also
  run inside Temporal workflows, where a replay must decode them the same way.
* ``check_application`` adds the *policy*: how many destinations, duplicates,
  which documents the catalogue requires, unknown fields. It collects every
  failure instead of stopping at the first, because a client fixing a rejected
  form one field per round trip is the main complaint about such APIs.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, Final

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError
from stdnum import exceptions as stdnum_errors
from stdnum.cn import ric, uscc

from domain import hidden_text
from domain.errors import FieldError, ValidationFailed
from domain.requirements import RequirementsCatalogue

MIN_DESTINATION_NUMBERS: Final = 1
MAX_DESTINATION_NUMBERS: Final = 10
# A case needs at most a handful of kinds (domain/data/requirements.json); this
# leaves room for documents of several pages and still bounds the work one form costs.
MAX_DOCUMENTS: Final = 20

# The most items each list of the form may have. A longer list is reported whole
# and only its first items are examined, so the work (and the error list) a form
# can cause stays bounded whatever its size.
LIST_LIMITS: Final[Mapping[str, tuple[int, str]]] = {
    "destination_numbers": (MAX_DESTINATION_NUMBERS, "destination numbers"),
    "documents": (MAX_DOCUMENTS, "documents"),
}


class InvalidValue(ValueError):
    """A single value failed a format rule; carries the stable error code."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")


# ---------------------------------------------------------------------------
# Normalisers: each returns the canonical form or raises InvalidValue.
# ---------------------------------------------------------------------------

# Separators people type in numbers, including those a Chinese IME produces;
# NFKC folds full-width digits and hyphens to ASCII first.
_SEPARATORS = str.maketrans("", "", " -()./\u00a0\u2010\u2011\u2012\u2013\u2014\u3000")
_DIGITS = re.compile(r"[0-9]+")
_MOBILE = re.compile(r"1[3-9][0-9]{9}")
# Three-digit area codes (010, 02X) only have eight-digit local numbers; the
# four-digit ones have seven or eight. A local number cannot start with 0, the
# trunk prefix; a leading 1 is rare but placeholder-style numbers such as
# 010-12345678 are what applicants and our own examples use, so it is allowed.
_LANDLINE = re.compile(r"0(?:10|2[0-9])[1-9][0-9]{7}|0[3-9][0-9]{2}[1-9][0-9]{6,7}")
_SERVICE_NUMBER = re.compile(r"[48]00[0-9]{7}")
_FOUR_HUNDRED = re.compile(r"400[0-9]{7}")
_CONTENT_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*")
_SHA256 = re.compile(r"[0-9a-f]{64}")

# GB/T 2260 province-level codes that appear on resident IDs, plus 81/82/83 for
# the residence permits of Hong Kong, Macao and Taiwan residents, which use the
# same 18-character format. stdnum's own check goes down to county level and
# requires the county to have existed in the birth year; that rejects real IDs
# (e.g. Pudong 310115 for anyone born before 1992, since the code is assigned
# at registration, not birth), so only the province is checked here.
_ID_REGIONS: Final = frozenset(
    str(code)
    for first, last in ((11, 15), (21, 23), (31, 37), (41, 46), (50, 54), (61, 65), (81, 83))
    for code in range(first, last + 1)
)

_CODE_KEY: Final = "domain_code"

_PHONE_HINT = (
    "give a mainland mobile number (11 digits starting 13-19) or a landline "
    "with its area code, e.g. 010-12345678 or 0755-1234567"
)


def _fold(raw: str) -> str:
    return unicodedata.normalize("NFKC", raw).strip()


def normalise_phone(raw: str) -> str:
    """A mainland mobile or landline as digits only, e.g. ``01012345678``."""
    digits = _fold(raw).translate(_SEPARATORS)
    international = False
    for prefix in ("+86", "0086"):
        if digits.startswith(prefix):
            digits, international = digits[len(prefix) :], True
            break
    if not digits:
        raise InvalidValue("required", "A phone number is required: " + _PHONE_HINT + ".")
    if not _DIGITS.fullmatch(digits):
        raise InvalidValue(
            "invalid_phone",
            "Use only digits, spaces and hyphens (an optional +86 in front): " + _PHONE_HINT + ".",
        )
    if _SERVICE_NUMBER.fullmatch(digits):
        raise InvalidValue(
            "service_number_not_allowed",
            "A 400 or 800 service number cannot be used here: give the landline or "
            "mobile number that should actually ring.",
        )
    # With +86 the landline trunk 0 is dropped (+86 10 1234 5678); Beijing's
    # 10 then looks like a mobile prefix, so only a full mobile number is left as is.
    if international and not digits.startswith("0") and not _MOBILE.fullmatch(digits):
        digits = "0" + digits
    if _MOBILE.fullmatch(digits) or _LANDLINE.fullmatch(digits):
        return digits
    raise InvalidValue("invalid_phone", "Not a valid phone number: " + _PHONE_HINT + ".")


def normalise_credit_code(raw: str) -> str:
    """A Unified Social Credit Code in canonical (upper-case, compact) form."""
    code = uscc.compact(_fold(raw))
    if not code:
        raise InvalidValue("required", "The Unified Social Credit Code (统一社会信用代码) is required.")
    try:
        return uscc.validate(code)
    except stdnum_errors.InvalidLength:
        raise InvalidValue(
            "invalid_length",
            f"A Unified Social Credit Code has 18 characters, this one has {len(code)}: "
            "copy it from the business licence.",
        ) from None
    except stdnum_errors.InvalidChecksum:
        raise InvalidValue(
            "invalid_check_digit",
            "The last character does not match the first 17 (check character): "
            "re-type the code exactly as printed on the business licence.",
        ) from None
    except stdnum_errors.ValidationError:
        raise InvalidValue(
            "invalid_format",
            "The first 8 characters must be digits and the rest digits or capital "
            "letters other than I, O, S, V and Z: copy the code from the business licence.",
        ) from None


def normalise_id_number(raw: str) -> str:
    """An 18-character resident ID number, with a capital X check character."""
    number = _fold(raw).translate(_SEPARATORS).upper()
    if not number:
        raise InvalidValue("required", "The resident ID number (身份证号码) is required.")
    if len(number) != 18:
        raise InvalidValue(
            "invalid_length",
            f"A resident ID number has 18 characters, this one has {len(number)}: "
            "copy it from the ID card (15-digit first-generation numbers are no longer accepted).",
        )
    if not (_DIGITS.fullmatch(number[:17]) and number[17] in "0123456789X"):
        raise InvalidValue(
            "invalid_format",
            "A resident ID number is 17 digits followed by a digit or X.",
        )
    if number[-1] != ric.calc_check_digit(number):
        raise InvalidValue(
            "invalid_check_digit",
            "The last character does not match the first 17 (check digit): "
            "re-type the number exactly as printed on the ID card.",
        )
    try:
        born = ric.get_birth_date(number)
    except stdnum_errors.ValidationError:
        born = None
    if born is None or born.year < 1900:
        raise InvalidValue(
            "invalid_birth_date",
            "Characters 7-14 must be the holder's date of birth (YYYYMMDD): check the ID number.",
        )
    if number[:2] not in _ID_REGIONS:
        raise InvalidValue(
            "invalid_region",
            "The first two digits are not a province code: check the ID number.",
        )
    return number


def normalise_service_number(raw: str) -> str:
    """A 400 number as 10 digits; the display form ``400-123-4567`` is accepted."""
    number = _fold(raw).translate(_SEPARATORS)
    if not _FOUR_HUNDRED.fullmatch(number):
        raise InvalidValue(
            "invalid_format",
            "A 400 number is 400 followed by 7 digits, e.g. 400-123-4567.",
        )
    return number


def _digits_fragment(raw: str) -> str:
    digits = _fold(raw).translate(_SEPARATORS)
    if not _DIGITS.fullmatch(digits) or len(digits) > 10:
        raise InvalidValue("invalid_format", "Use 1 to 10 digits.")
    return digits


def _text(max_length: int) -> Callable[[str], str]:
    def check(value: str) -> str:
        value = unicodedata.normalize("NFC", value).strip()
        if not value:
            raise InvalidValue("required", "This field is required and must not be blank.")
        if len(value) > max_length:
            raise InvalidValue("too_long", f"Use at most {max_length} characters (got {len(value)}).")
        return value

    return check


def _key(value: str) -> str:
    # Catalogue keys are lower-case; whether the key exists is policy, decided
    # against the catalogue in check_application.
    return _text(64)(value).lower()


def _content_type(value: str) -> str:
    value = value.strip().lower()
    if not _CONTENT_TYPE.fullmatch(value):
        raise InvalidValue("invalid_format", "Give a media type such as application/pdf or image/jpeg.")
    return value


def _sha256(value: str) -> str:
    value = value.strip().lower()
    if not _SHA256.fullmatch(value):
        raise InvalidValue("invalid_format", "Give the SHA-256 of the file as 64 hexadecimal characters.")
    return value


def _blank_to_none(value: object) -> object:
    if isinstance(value, str) and not value.strip():
        return None
    return value


def _custom_error(code: str, message: str) -> PydanticCustomError:
    # The code travels in the context too: some of our codes (too_long) are
    # also pydantic's own error types, and check_application must tell them apart.
    return PydanticCustomError(code, message, {_CODE_KEY: code})


def _rule(check: Callable[[str], str]) -> AfterValidator:
    def run(value: str) -> str:
        try:
            return check(value)
        except InvalidValue as exc:
            # The custom error type is our stable code, so pydantic's error list
            # and check_application report failures the same way.
            raise _custom_error(exc.code, exc.message) from None

    return AfterValidator(run)


_OptionalBlank = BeforeValidator(_blank_to_none)

Name = Annotated[str, _rule(_text(64))]
Text = Annotated[str, _rule(_text(256))]
Key = Annotated[str, _rule(_key)]
CreditCode = Annotated[str, _rule(normalise_credit_code)]
IdNumber = Annotated[str, _rule(normalise_id_number)]
Phone = Annotated[str, _rule(normalise_phone)]
ServiceNumber = Annotated[str, _rule(normalise_service_number)]
DigitsFragment = Annotated[str, _rule(_digits_fragment)]

_PAYLOAD = ConfigDict(frozen=True, str_strip_whitespace=True, extra="ignore")


# ---------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------


class Person(BaseModel):
    """A legal representative or an agent filing for the company."""

    model_config = _PAYLOAD

    name: Name
    id_number: IdNumber
    phone: Phone


class DocumentRef(BaseModel):
    """An uploaded document; ``kind`` is one of the catalogue's document kinds."""

    model_config = _PAYLOAD

    kind: Key
    document_id: Name
    content_type: Annotated[str, _rule(_content_type)]
    sha256: Annotated[str, _rule(_sha256)]


class NumberCriteria(BaseModel):
    """What the applicant wants when no specific number was picked."""

    model_config = _PAYLOAD

    tier: Annotated[Key | None, _OptionalBlank] = None
    pattern_tag: Annotated[Key | None, _OptionalBlank] = None
    starts_with: Annotated[DigitsFragment | None, _OptionalBlank] = None
    ends_with: Annotated[DigitsFragment | None, _OptionalBlank] = None
    contains: Annotated[DigitsFragment | None, _OptionalBlank] = None
    exclude_four: bool = False
    # Strict: "5000" or 50.0 here means a client doing money in strings/floats.
    max_monthly_spend_fen: Annotated[int | None, Field(strict=True, ge=0)] = None


class ApplicationForm(BaseModel):
    """Everything an applicant submits for one 400 number."""

    model_config = _PAYLOAD

    organisation_id: Name
    company_name: Annotated[str, _rule(_text(128))]
    credit_code: CreditCode
    company_type: Key
    industry: Key
    carrier: Key
    legal_representative: Person
    agent: Person | None = None
    contact_address: Text
    destination_numbers: list[Phone]
    documents: list[DocumentRef] = Field(default_factory=list)
    package: Key
    requested_number: Annotated[ServiceNumber | None, _OptionalBlank] = None
    number_criteria: NumberCriteria | None = None
    activation_at: datetime | None = None

    @field_validator("activation_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.utcoffset() is None:
            raise _custom_error(
                "timezone_required",
                "Give the activation time with a UTC offset, e.g. 2025-10-09T09:00:00+08:00.",
            )
        return value


class NumberChoice(BaseModel):
    """The part of a form that says which number it wants: read on its own so
    that the number can be checked while other fields are still wrong."""

    model_config = _PAYLOAD

    carrier: Key
    requested_number: Annotated[ServiceNumber | None, _OptionalBlank] = None
    number_criteria: NumberCriteria | None = None


# ---------------------------------------------------------------------------
# Submission check
# ---------------------------------------------------------------------------

_NESTED: Final[Mapping[str, type[BaseModel]]] = {
    "legal_representative": Person,
    "agent": Person,
    "number_criteria": NumberCriteria,
}

FIELD_PATHS: Final[tuple[str, ...]] = (
    *(name for name in ApplicationForm.model_fields if name != "organisation_id"),
    *(f"{parent}.{name}" for parent, model in _NESTED.items() for name in model.model_fields),
)
"""The application's field names, as a change request or a report of changed
details names them (``legal_representative.phone``); the organisation is the
API key's, not a field."""


def value_at(form: Mapping[str, Any], path: str) -> Any:
    """The value at ``path`` (one of FIELD_PATHS) of a form as data; None if absent."""
    value: Any = form
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


@dataclass(frozen=True)
class ActivationWindow:
    """When an activation may be asked for: from ``now`` to ``now + horizon``.

    Policy with a clock, so it is passed in: a submission is checked against the
    time it is made, a replayed history never is."""

    now: datetime
    horizon: timedelta


def check_application(
    form: ApplicationForm | Mapping[str, Any],
    catalogue: RequirementsCatalogue,
    *,
    activation: ActivationWindow | None = None,
) -> list[FieldError]:
    """Every reason the form cannot be submitted; empty when it can.

    Never raises for bad input: wrong types, missing fields and garbage all come
    back as FieldErrors. With ``activation``, ``activation_at`` must fall in it.
    """
    if isinstance(form, ApplicationForm):
        data: Mapping[str, Any] = form.model_dump()
    elif isinstance(form, Mapping):
        data = form
    else:
        return [FieldError("", "invalid_type", "Send the application as a JSON object.")]

    errors = oversized_lists(data)
    if errors:
        data = {**data, **{e.field: data[e.field][: LIST_LIMITS[e.field][0]] for e in errors}}
    errors += _unknown_fields(data)
    model: ApplicationForm | None = None
    try:
        model = ApplicationForm.model_validate(data)
    except ValidationError as exc:
        errors.extend(_from_pydantic(detail) for detail in exc.errors())
    format_failed = {e.field for e in errors}
    # A policy complaint about a value that is already malformed only adds noise.
    policy = _policy(data, model, catalogue)
    if activation is not None:
        policy += _check_activation(data.get("activation_at"), activation)
    errors.extend(e for e in policy if e.field not in format_failed)
    return errors


def oversized_lists(data: object) -> list[FieldError]:
    """The lists of ``data`` longer than their limit (``LIST_LIMITS``), one error each."""
    if not isinstance(data, Mapping):
        return []
    errors: list[FieldError] = []
    for name, (limit, what) in LIST_LIMITS.items():
        value = data.get(name)
        if isinstance(value, list) and len(value) > limit:
            errors.append(FieldError(name, "too_many", f"Give at most {limit} {what} (got {len(value)})."))
    return errors


def validate_application(
    form: ApplicationForm | Mapping[str, Any], catalogue: RequirementsCatalogue
) -> ApplicationForm:
    """The normalised form, or ValidationFailed carrying every FieldError."""
    errors = check_application(form, catalogue)
    if errors:
        raise ValidationFailed(errors)
    if isinstance(form, ApplicationForm):
        return form
    return ApplicationForm.model_validate(form)


def _policy(
    data: Mapping[str, Any], model: ApplicationForm | None, catalogue: RequirementsCatalogue
) -> list[FieldError]:
    # Works from the raw data when the model could not be built, so policy
    # failures are reported in the same round trip as format failures.
    errors: list[FieldError] = []
    errors += _check_hidden_text(data)
    errors += _check_destinations(data.get("destination_numbers"))
    errors += _check_number_choice(data)
    errors += _check_agent(data)
    errors += _check_documents(data, model, catalogue)
    errors += _check_package(data, catalogue)
    return errors


# Text an operator reads and acts on: it must read as it is.
_PLAIN_TEXT_FIELDS: Final = (
    ("company_name",),
    ("contact_address",),
    ("legal_representative", "name"),
    ("agent", "name"),
)


def _check_hidden_text(data: Mapping[str, Any]) -> list[FieldError]:
    errors: list[FieldError] = []
    for path in _PLAIN_TEXT_FIELDS:
        value: object = data
        for part in path:
            value = value.get(part) if isinstance(value, Mapping) else None
        if isinstance(value, str) and hidden_text.has_hidden_characters(value):
            errors.append(FieldError(".".join(path), "hidden_characters", hidden_text.MESSAGE))
    return errors


def _check_package(data: Mapping[str, Any], catalogue: RequirementsCatalogue) -> list[FieldError]:
    package = _try(_key, data.get("package"))
    if package is None or package in catalogue.packages:
        return []
    return [
        FieldError(
            "package",
            "unknown_package",
            f"Unknown package: use one of {', '.join(catalogue.packages)} "
            "(GET /v1/requirements/catalogue lists them).",
        )
    ]


def _check_destinations(raw: object) -> list[FieldError]:
    if not isinstance(raw, list):
        return []
    errors: list[FieldError] = []
    if len(raw) < MIN_DESTINATION_NUMBERS:
        errors.append(
            FieldError(
                "destination_numbers",
                "too_few",
                f"Give at least {MIN_DESTINATION_NUMBERS} number the 400 number should ring.",
            )
        )
    first_seen: dict[str, int] = {}
    for index, item in enumerate(raw):
        number = _try(normalise_phone, item)
        if number is None:
            continue
        if number in first_seen:
            errors.append(
                FieldError(
                    f"destination_numbers[{index}]",
                    "duplicate",
                    f"Same number as destination_numbers[{first_seen[number]}]: remove one of them.",
                )
            )
        else:
            first_seen[number] = index
    return errors


_DATETIME: Final = TypeAdapter(datetime)


def _check_activation(raw: object, window: ActivationWindow) -> list[FieldError]:
    if raw is None:
        return []
    if not isinstance(raw, str | datetime):
        # The model would read a number as a Unix time; nobody means that.
        return [
            FieldError(
                "activation_at",
                "invalid_type",
                "Give the activation time as ISO 8601 text with a UTC offset, "
                "e.g. 2025-10-09T09:00:00+08:00.",
            )
        ]
    try:
        value = _DATETIME.validate_python(raw)
    except ValidationError:
        return []  # reported by the model
    if value.utcoffset() is None:
        return []  # reported by the model
    if value < window.now:
        return [
            FieldError(
                "activation_at",
                "in_past",
                "The activation time has passed: give a later one, or leave activation_at out to "
                "activate as soon as the number is verified.",
            )
        ]
    if value > window.now + window.horizon:
        return [
            FieldError(
                "activation_at",
                "too_far_ahead",
                f"Ask for activation at most {window.horizon.days} days ahead "
                f"(by {(window.now + window.horizon).date().isoformat()}).",
            )
        ]
    return []


def _check_number_choice(data: Mapping[str, Any]) -> list[FieldError]:
    requested = _blank_to_none(data.get("requested_number"))
    if requested is None and data.get("number_criteria") is None:
        return [
            FieldError(
                "requested_number",
                "number_or_criteria_required",
                "Give requested_number (a 400 number found by search) or number_criteria.",
            )
        ]
    return []


def _check_agent(data: Mapping[str, Any]) -> list[FieldError]:
    agent, legal_rep = data.get("agent"), data.get("legal_representative")
    if not isinstance(agent, Mapping) or not isinstance(legal_rep, Mapping):
        return []
    agent_id = _try(normalise_id_number, agent.get("id_number"))
    if agent_id is not None and agent_id == _try(normalise_id_number, legal_rep.get("id_number")):
        return [
            FieldError(
                "agent.id_number",
                "same_as_legal_representative",
                "The agent is the legal representative: leave agent out when the legal "
                "representative files in person.",
            )
        ]
    return []


def _check_documents(
    data: Mapping[str, Any], model: ApplicationForm | None, catalogue: RequirementsCatalogue
) -> list[FieldError]:
    errors: list[FieldError] = []
    has_agent = data.get("agent") is not None

    carrier = _try(_key, data.get("carrier"))
    company_type = _try(_key, data.get("company_type"))
    industry = _try(_key, data.get("industry"))
    required: list[str] | None = None
    if carrier is not None:
        key_errors = _unknown_key_errors(catalogue, carrier, company_type, industry)
        errors += key_errors
        if not key_errors and company_type is not None and industry is not None:
            required = catalogue.required_documents(carrier, company_type, industry, has_agent)
    if required is None:
        # The case is not fully known, but what every case needs is: say so now
        # rather than after the next round trip.
        required = catalogue.baseline_documents(has_agent, carrier if carrier in catalogue.carriers else None)

    raw_docs = data.get("documents", [])
    if not isinstance(raw_docs, list):
        return errors
    present: set[str] = set()
    ids_seen: dict[str, int] = {}
    for index, doc in enumerate(raw_docs):
        if not isinstance(doc, Mapping):
            continue
        kind = _try(_key, doc.get("kind"))
        if kind is not None:
            if kind in catalogue.document_kinds:
                present.add(kind)
            else:
                errors.append(
                    FieldError(
                        f"documents[{index}].kind",
                        "unknown_document_kind",
                        f"Use one of: {', '.join(catalogue.document_kinds)}.",
                    )
                )
        content_type = _try(_content_type, doc.get("content_type"))
        if content_type is not None and content_type not in catalogue.accepted_content_types:
            errors.append(
                FieldError(
                    f"documents[{index}].content_type",
                    "unsupported_content_type",
                    f"Upload the document as one of: {', '.join(sorted(catalogue.accepted_content_types))}.",
                )
            )
        document_id = _try(_text(64), doc.get("document_id"))
        if document_id is not None:
            if document_id in ids_seen:
                errors.append(
                    FieldError(
                        f"documents[{index}].document_id",
                        "duplicate",
                        f"Same document as documents[{ids_seen[document_id]}]: list each upload once.",
                    )
                )
            else:
                ids_seen[document_id] = index

    for kind in required:
        if kind not in present:
            errors.append(
                FieldError(
                    "documents",
                    "missing_document",
                    f"{_article(kind)} {kind} document is required ({catalogue.label(kind)}): upload it "
                    f"and list it in documents.",
                )
            )
    return errors


def _article(word: str) -> str:
    return "An" if word[:1].lower() in "aeiou" else "A"


def _unknown_key_errors(
    catalogue: RequirementsCatalogue,
    carrier: str,
    company_type: str | None,
    industry: str | None,
) -> list[FieldError]:
    # Checked one by one rather than via required_documents' exception, which
    # would only name the first unknown key.
    if carrier not in catalogue.carriers:
        return [
            FieldError(
                "carrier",
                "unknown_carrier",
                f"Unknown carrier: use one of {', '.join(catalogue.carrier_codes)}.",
            )
        ]
    entry = catalogue.carrier(carrier)
    errors: list[FieldError] = []
    if company_type is not None and company_type not in entry.company_types:
        errors.append(
            FieldError(
                "company_type",
                "unknown_company_type",
                f"Unknown company type for {carrier}: use one of {', '.join(entry.company_types)}.",
            )
        )
    if industry is not None and industry not in entry.industries:
        errors.append(
            FieldError(
                "industry",
                "unknown_industry",
                f"Unknown industry for {carrier}: use one of {', '.join(entry.industries)}.",
            )
        )
    return errors


def _unknown_fields(data: Mapping[str, Any]) -> list[FieldError]:
    # The models ignore unknown keys so that old workers can decode newer
    # payloads; a client that misspells a field (say requestedNumber) still
    # needs to hear about it, so the submission check reports them.
    errors = _unknown_keys(data, ApplicationForm, "")
    for name, model in _NESTED.items():
        value = data.get(name)
        if isinstance(value, Mapping):
            errors += _unknown_keys(value, model, name + ".")
    docs = data.get("documents")
    if isinstance(docs, list):
        for index, doc in enumerate(docs):
            if isinstance(doc, Mapping):
                errors += _unknown_keys(doc, DocumentRef, f"documents[{index}].")
    return errors


def _unknown_keys(data: Mapping[Any, Any], model: type[BaseModel], prefix: str) -> list[FieldError]:
    return [
        FieldError(
            f"{prefix}{key}",
            "unknown_field",
            f"Not a field here: check the spelling (fields are "
            f"{', '.join(model.model_fields)}) or remove it.",
        )
        for key in data
        if key not in model.model_fields
    ]


# Pydantic's own error types, folded into our small set of stable codes.
_PYDANTIC_CODES: Final[Mapping[str, str]] = {
    "missing": "required",
    "greater_than_equal": "out_of_range",
    "int_from_float": "invalid_type",
}


def _from_pydantic(detail: ErrorDetails) -> FieldError:
    path = _path(detail["loc"])
    kind = detail["type"]
    ours = detail.get("ctx", {}).get(_CODE_KEY)
    if isinstance(ours, str):
        code = ours
    elif kind in _PYDANTIC_CODES:
        code = _PYDANTIC_CODES[kind]
    elif kind.endswith("_type") or kind.startswith("model_attributes"):
        code = "invalid_type"
    elif kind.endswith("_parsing") or kind.startswith("datetime_"):
        code = "invalid_format"
    else:
        code = "invalid"
    message = detail["msg"]
    if code == "required":
        message = "This field is required."
    elif not message.endswith("."):
        message += "."
    return FieldError(path, code, message)


def _path(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


def _try(check: Callable[[str], str], value: object) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        return check(value)
    except InvalidValue:
        return None


# ---------------------------------------------------------------------------
# Masking for logs and read models
# ---------------------------------------------------------------------------


def mask_id_number(value: str) -> str:
    """``110101198001011232`` -> ``110101********1232``: the region and the
    last four stay, which is what operators quote; the birth date does not."""
    compact = str(value).strip().replace(" ", "").upper()
    if len(compact) < 11:
        return "*" * len(compact)
    return compact[:6] + "*" * (len(compact) - 10) + compact[-4:]


def mask_phone(value: str) -> str:
    """``13800138000`` -> ``138****8000``."""
    compact = "".join(ch for ch in str(value) if ch.isalnum())
    if len(compact) < 8:
        return "*" * len(compact)
    return compact[:3] + "*" * (len(compact) - 7) + compact[-4:]
