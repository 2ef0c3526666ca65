"""Application validation: format rules in the models, policy in check_application."""

from __future__ import annotations

import json
import pickle
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from stdnum.cn import ric, uscc

from domain.applicant import (
    MAX_DESTINATION_NUMBERS,
    MAX_DOCUMENTS,
    ApplicationForm,
    DocumentRef,
    InvalidValue,
    NumberCriteria,
    Person,
    check_application,
    mask_id_number,
    mask_phone,
    normalise_credit_code,
    normalise_id_number,
    normalise_phone,
    normalise_service_number,
    oversized_lists,
    validate_application,
)
from domain.errors import FieldError, ValidationFailed
from domain.requirements import RequirementsCatalogue, load_catalogue
from tests.domain.factories import (
    AGENT_ID,
    DELETE,
    ID_ENDING_IN_X,
    LANDLINE_NORMALISED,
    LEGAL_REP_ID,
    MOBILE,
    VALID_USCC,
    VALID_USCC_INDIVIDUAL,
    agent_dict,
    agent_documents,
    document_dict,
    make_ric,
    make_uscc,
    valid_application,
    valid_application_dict,
    wrong_check_character,
)

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"


@pytest.fixture(scope="module")
def catalogue() -> RequirementsCatalogue:
    return load_catalogue()


def codes(errors: list[FieldError]) -> set[tuple[str, str]]:
    return {(e.field, e.code) for e in errors}


def check(catalogue: RequirementsCatalogue, **overrides: Any) -> set[tuple[str, str]]:
    return codes(check_application(valid_application_dict(**overrides), catalogue))


# --- fixtures themselves -----------------------------------------------------


def test_fixture_values_are_valid_by_stdnum() -> None:
    for code in (VALID_USCC, VALID_USCC_INDIVIDUAL):
        assert uscc.is_valid(code)
    # stdnum's full RIC check (including birth place) accepts our fixtures.
    for number in (LEGAL_REP_ID, AGENT_ID, ID_ENDING_IN_X):
        assert ric.is_valid(number)
    assert ID_ENDING_IN_X.endswith("X")


def test_valid_application_has_no_errors(catalogue: RequirementsCatalogue) -> None:
    assert check_application(valid_application_dict(), catalogue) == []


def test_valid_application_model_is_accepted_too(catalogue: RequirementsCatalogue) -> None:
    assert check_application(valid_application(), catalogue) == []


def test_factory_nested_override_and_delete() -> None:
    data = valid_application_dict(legal_representative__phone="0755-1234567", activation_at=DELETE)
    assert data["legal_representative"]["phone"] == "0755-1234567"
    assert "activation_at" not in data
    # Overrides never leak into later calls.
    assert valid_application_dict()["legal_representative"]["phone"] == MOBILE


# --- models: normalisation and JSON round trip ---------------------------------


def test_model_normalises_values() -> None:
    form = valid_application(
        credit_code=" " + VALID_USCC.lower(),
        carrier="China_Unicom",
        destination_numbers=["+86 138 0013 8000", "(010) 1234-5678", "０７５５－１２３４５６７"],
        requested_number="400-012-3456",
        legal_representative__id_number=ID_ENDING_IN_X.lower(),
    )
    assert form.credit_code == VALID_USCC
    assert form.carrier == "china_unicom"
    assert form.destination_numbers == [MOBILE, LANDLINE_NORMALISED, "07551234567"]
    assert form.requested_number == "4000123456"
    assert form.legal_representative.id_number == ID_ENDING_IN_X


def test_model_json_round_trip() -> None:
    form = valid_application(
        agent=agent_dict(),
        documents=valid_application_dict()["documents"] + agent_documents(),
        number_criteria={
            "tier": "gold",
            "ends_with": "888",
            "exclude_four": True,
            "max_monthly_spend_fen": 150_000,
        },
    )
    text = form.model_dump_json()
    json.loads(text)  # plain JSON, no custom encoders needed
    again = ApplicationForm.model_validate_json(text)
    assert again == form
    assert again.activation_at == datetime(2025, 10, 9, 1, 0, tzinfo=UTC)
    assert ApplicationForm.model_validate(form.model_dump(mode="json")) == form


def test_models_are_immutable() -> None:
    form = valid_application()
    with pytest.raises(ValidationError):
        form.carrier = "china_mobile"  # type: ignore[misc]


def test_model_raises_with_stable_codes_as_error_types() -> None:
    with pytest.raises(ValidationError) as info:
        Person(name="张伟", id_number=wrong_check_character(LEGAL_REP_ID, "0123456789X"), phone="123")
    types = {(e["loc"], e["type"]) for e in info.value.errors()}
    assert types == {(("id_number",), "invalid_check_digit"), (("phone",), "invalid_phone")}


def test_model_ignores_unknown_keys_so_newer_payloads_still_decode() -> None:
    data = valid_application_dict()
    data["added_in_a_later_version"] = True
    assert ApplicationForm.model_validate(data).carrier == "china_unicom"


def test_blank_optional_values_become_none() -> None:
    form = valid_application(requested_number="  ", number_criteria={"tier": "", "ends_with": ""})
    assert form.requested_number is None
    assert form.number_criteria == NumberCriteria()


def test_document_ref_normalises_hash_and_content_type() -> None:
    doc = DocumentRef.model_validate(
        {"kind": "Business_Licence", "document_id": "d1", "content_type": "Image/JPEG", "sha256": "AB" * 32}
    )
    assert (doc.kind, doc.content_type, doc.sha256) == ("business_licence", "image/jpeg", "ab" * 32)


# --- resident ID numbers ---------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("", "required"),
        ("11010119800101123", "invalid_length"),
        ("1101011980010112321", "invalid_length"),
        ("11010119800101123A", "invalid_format"),
        ("1101011980O101123X", "invalid_format"),
        (wrong_check_character(LEGAL_REP_ID, "0123456789X"), "invalid_check_digit"),
        (make_ric("11010119801301123"), "invalid_birth_date"),  # month 13
        (make_ric("11010118991231123"), "invalid_birth_date"),  # before 1900
        (make_ric("99010119800101123"), "invalid_region"),
    ],
)
def test_id_number_rules(raw: str, code: str) -> None:
    with pytest.raises(InvalidValue) as info:
        normalise_id_number(raw)
    assert info.value.code == code
    assert info.value.message


def test_id_number_accepts_separators_and_lower_case_x() -> None:
    spaced = f"{ID_ENDING_IN_X[:6]} {ID_ENDING_IN_X[6:14]} {ID_ENDING_IN_X[14:].lower()}"
    assert normalise_id_number(spaced) == ID_ENDING_IN_X


def test_id_number_region_check_does_not_depend_on_birth_year() -> None:
    # Pudong (310115) was created in 1992, but people born earlier hold IDs with
    # it because the code is assigned at registration: stdnum rejects these.
    pudong_1985 = make_ric("31011519851231004")
    assert not ric.is_valid(pudong_1985)
    assert normalise_id_number(pudong_1985) == pudong_1985


def test_id_number_accepts_hong_kong_residence_permit() -> None:
    permit = make_ric("81000019900101001")
    assert normalise_id_number(permit) == permit


@settings(max_examples=200)
@given(
    region=st.sampled_from(["110101", "310104", "440305", "510107", "650102"]),
    born=st.dates(min_value=datetime(1930, 1, 1).date(), max_value=datetime(2010, 12, 31).date()),
    serial=st.integers(min_value=0, max_value=999),
    wrong=st.sampled_from("0123456789X"),
)
def test_id_check_digit_property(region: str, born: Any, serial: int, wrong: str) -> None:
    body = f"{region}{born:%Y%m%d}{serial:03d}"
    good = make_ric(body)
    assert normalise_id_number(good) == good
    if wrong != good[-1]:
        with pytest.raises(InvalidValue) as info:
            normalise_id_number(body + wrong)
        assert info.value.code == "invalid_check_digit"


# --- credit codes -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("", "required"),
        (VALID_USCC[:-1], "invalid_length"),
        ("A" + VALID_USCC[1:], "invalid_format"),
        (VALID_USCC[:9] + "O" + VALID_USCC[10:], "invalid_format"),
        (wrong_check_character(VALID_USCC, USCC_ALPHABET), "invalid_check_digit"),
    ],
)
def test_credit_code_rules(raw: str, code: str) -> None:
    with pytest.raises(InvalidValue) as info:
        normalise_credit_code(raw)
    assert info.value.code == code


@given(
    body=st.text(alphabet=USCC_ALPHABET, min_size=9, max_size=9),
    head=st.sampled_from(["91440300", "12110000"]),
)
def test_credit_code_check_character_property(body: str, head: str) -> None:
    code = make_uscc(head + body)
    assert normalise_credit_code(code.lower()) == code
    with pytest.raises(InvalidValue) as info:
        normalise_credit_code(wrong_check_character(code, USCC_ALPHABET))
    assert info.value.code == "invalid_check_digit"


# --- phone numbers -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("13800138000", "13800138000"),
        ("199 1234 5678", "19912345678"),
        ("+86 138-0013-8000", "13800138000"),
        ("0086 13800138000", "13800138000"),
        ("010-12345678", "01012345678"),
        ("(021) 6888 8888", "02168888888"),
        ("0755-1234567", "07551234567"),
        ("0755-86013388", "075586013388"),
        ("+86 10 8888 6666", "01088886666"),
        ("０１０－１２３４５６７８", "01012345678"),
    ],
)
def test_phone_accepted(raw: str, expected: str) -> None:
    assert normalise_phone(raw) == expected


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("", "required"),
        ("   ", "required"),
        ("12800138000", "invalid_phone"),  # 12x is not a mobile block
        ("1380013800", "invalid_phone"),  # 10 digits
        ("138001380001", "invalid_phone"),
        ("010-1234567", "invalid_phone"),  # 3-digit area codes have 8-digit numbers
        ("0755-123456", "invalid_phone"),
        ("0755-012345678", "invalid_phone"),
        ("12345678", "invalid_phone"),  # no area code
        ("010-12345678 ext 12", "invalid_phone"),
        ("4001234567", "service_number_not_allowed"),
        ("400-123-4567", "service_number_not_allowed"),
        ("800-810-8888", "service_number_not_allowed"),
    ],
)
def test_phone_rejected(raw: str, code: str) -> None:
    with pytest.raises(InvalidValue) as info:
        normalise_phone(raw)
    assert info.value.code == code


@given(st.text(max_size=30))
def test_phone_normaliser_only_raises_invalid_value(raw: str) -> None:
    try:
        result = normalise_phone(raw)
    except InvalidValue:
        return
    assert result.isascii() and result.isdigit()


def test_service_number_display_form() -> None:
    assert normalise_service_number("400-012-3456") == "4000123456"
    for bad in ("800-012-3456", "40001234567", "400012345", "400012345x"):
        with pytest.raises(InvalidValue):
            normalise_service_number(bad)


# --- check_application: one rule at a time -----------------------------------------


def test_bad_credit_code_is_reported(catalogue: RequirementsCatalogue) -> None:
    bad = wrong_check_character(VALID_USCC, USCC_ALPHABET)
    assert check(catalogue, credit_code=bad) == {("credit_code", "invalid_check_digit")}


def test_bad_legal_rep_id_is_reported(catalogue: RequirementsCatalogue) -> None:
    bad = wrong_check_character(LEGAL_REP_ID, "0123456789X")
    assert check(catalogue, legal_representative__id_number=bad) == {
        ("legal_representative.id_number", "invalid_check_digit")
    }


def test_legal_rep_required(catalogue: RequirementsCatalogue) -> None:
    assert check(catalogue, legal_representative=DELETE) == {("legal_representative", "required")}
    assert check(catalogue, legal_representative__name="  ") == {("legal_representative.name", "required")}


def test_agent_needs_valid_fields_and_documents(catalogue: RequirementsCatalogue) -> None:
    found = check(catalogue, agent=agent_dict(phone="12345", id_number="123"))
    assert found == {
        ("agent.phone", "invalid_phone"),
        ("agent.id_number", "invalid_length"),
        ("documents", "missing_document"),
    }
    errors = check_application(valid_application_dict(agent=agent_dict()), catalogue)
    missing = sorted(e.message.split()[1] for e in errors if e.code == "missing_document")
    assert missing == ["agent_id", "authorisation_letter"]


def test_agent_with_documents_is_valid(catalogue: RequirementsCatalogue) -> None:
    docs = valid_application_dict()["documents"] + agent_documents()
    assert check(catalogue, agent=agent_dict(), documents=docs) == set()


def test_agent_missing_fields(catalogue: RequirementsCatalogue) -> None:
    docs = valid_application_dict()["documents"] + agent_documents()
    assert check(catalogue, agent={"name": "李娜"}, documents=docs) == {
        ("agent.id_number", "required"),
        ("agent.phone", "required"),
    }


def test_agent_who_is_the_legal_rep_is_flagged(catalogue: RequirementsCatalogue) -> None:
    docs = valid_application_dict()["documents"] + agent_documents()
    assert check(catalogue, agent=agent_dict(id_number=LEGAL_REP_ID), documents=docs) == {
        ("agent.id_number", "same_as_legal_representative")
    }


@pytest.mark.parametrize(
    ("numbers", "expected"),
    [
        ([], {("destination_numbers", "too_few")}),
        ([f"1380013{i:04d}" for i in range(MAX_DESTINATION_NUMBERS)], set()),
        (
            [f"1380013{i:04d}" for i in range(MAX_DESTINATION_NUMBERS + 1)],
            {("destination_numbers", "too_many")},
        ),
        ([MOBILE, "010-12345678", "01012345678"], {("destination_numbers[2]", "duplicate")}),
        (["+86 13800138000", MOBILE], {("destination_numbers[1]", "duplicate")}),
        ([MOBILE, "4001234567"], {("destination_numbers[1]", "service_number_not_allowed")}),
        (["8008108888"], {("destination_numbers[0]", "service_number_not_allowed")}),
        ([MOBILE, "12345"], {("destination_numbers[1]", "invalid_phone")}),
        ([MOBILE, 13800138001], {("destination_numbers[1]", "invalid_type")}),
        ("13800138000", {("destination_numbers", "invalid_type")}),
    ],
)
def test_destination_numbers(catalogue: RequirementsCatalogue, numbers: Any, expected: set[Any]) -> None:
    assert check(catalogue, destination_numbers=numbers) == expected


def test_destination_numbers_required(catalogue: RequirementsCatalogue) -> None:
    assert check(catalogue, destination_numbers=DELETE) == {("destination_numbers", "required")}


@pytest.mark.parametrize(
    ("requested", "criteria", "expected"),
    [
        ("4000123456", None, set()),
        (None, {"ends_with": "888", "exclude_four": True}, set()),
        (None, {}, set()),  # any number of the carrier
        ("4000123456", {"tier": "gold"}, set()),
        (None, None, {("requested_number", "number_or_criteria_required")}),
        ("", None, {("requested_number", "number_or_criteria_required")}),
        ("4001234", None, {("requested_number", "invalid_format")}),
        ("8001234567", None, {("requested_number", "invalid_format")}),
        (4000123456, None, {("requested_number", "invalid_type")}),
        (None, {"ends_with": "88a"}, {("number_criteria.ends_with", "invalid_format")}),
        (None, {"max_monthly_spend_fen": -1}, {("number_criteria.max_monthly_spend_fen", "out_of_range")}),
        (
            None,
            {"max_monthly_spend_fen": "5000"},
            {("number_criteria.max_monthly_spend_fen", "invalid_type")},
        ),
        (None, {"max_monthly_spend_fen": 50.5}, {("number_criteria.max_monthly_spend_fen", "invalid_type")}),
        (None, {"ends_with": "888", "endswith": "8"}, {("number_criteria.endswith", "unknown_field")}),
    ],
)
def test_number_choice(
    catalogue: RequirementsCatalogue, requested: Any, criteria: Any, expected: set[Any]
) -> None:
    assert check(catalogue, requested_number=requested, number_criteria=criteria) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, set()),
        ("2025-10-09T09:00:00+08:00", set()),
        ("2025-10-09T01:00:00Z", set()),
        ("2025-10-09T09:00:00", {("activation_at", "timezone_required")}),
        ("next tuesday", {("activation_at", "invalid_format")}),
    ],
)
def test_activation_at(catalogue: RequirementsCatalogue, value: Any, expected: set[Any]) -> None:
    assert check(catalogue, activation_at=value) == expected


def test_activation_at_naive_datetime_object(catalogue: RequirementsCatalogue) -> None:
    assert check(catalogue, activation_at=datetime(2025, 10, 9, 9)) == {
        ("activation_at", "timezone_required")
    }
    aware = datetime(2025, 10, 9, 9, tzinfo=timezone(timedelta(hours=8)))
    assert check(catalogue, activation_at=aware) == set()


def test_missing_documents_are_named(catalogue: RequirementsCatalogue) -> None:
    errors = check_application(
        valid_application_dict(documents=[document_dict("business_licence")]), catalogue
    )
    assert codes(errors) == {("documents", "missing_document")}
    messages = " ".join(e.message for e in errors)
    assert "legal_rep_id" in messages and "application_form" in messages
    assert len(errors) == 2


def test_regulated_industry_needs_licence(catalogue: RequirementsCatalogue) -> None:
    errors = check_application(valid_application_dict(industry="medical"), catalogue)
    assert [(e.field, e.code) for e in errors] == [("documents", "missing_document")]
    assert "industry_licence" in errors[0].message
    docs = valid_application_dict()["documents"] + [document_dict("industry_licence")]
    assert check(catalogue, industry="medical", documents=docs) == set()


def test_documents_default_to_empty(catalogue: RequirementsCatalogue) -> None:
    errors = check_application(valid_application_dict(documents=DELETE), catalogue)
    assert len(errors) == 3 and {e.code for e in errors} == {"missing_document"}


def test_document_problems(catalogue: RequirementsCatalogue) -> None:
    docs = [
        *valid_application_dict()["documents"],
        document_dict("passport", document_id="p1"),
        document_dict("legal_rep_id", document_id="gif", content_type="image/gif"),
        document_dict("legal_rep_id", document_id="doc_business_licence"),
        {**document_dict("legal_rep_id", document_id="bad"), "sha256": "xyz", "content_type": "pdf"},
        {**document_dict("legal_rep_id", document_id="extra"), "url": "http://x"},
        "not a document",
    ]
    assert check(catalogue, documents=docs) == {
        ("documents[3].kind", "unknown_document_kind"),
        ("documents[4].content_type", "unsupported_content_type"),
        ("documents[5].document_id", "duplicate"),
        ("documents[6].sha256", "invalid_format"),
        ("documents[6].content_type", "invalid_format"),
        ("documents[7].url", "unknown_field"),
        ("documents[8]", "invalid_type"),
    }


def test_two_documents_of_one_kind_are_fine(catalogue: RequirementsCatalogue) -> None:
    # An ID card is often uploaded as front and back.
    docs = [*valid_application_dict()["documents"], document_dict("legal_rep_id", document_id="back")]
    assert check(catalogue, documents=docs) == set()


def test_unknown_catalogue_keys(catalogue: RequirementsCatalogue) -> None:
    assert check(catalogue, carrier="china_unicorn") == {("carrier", "unknown_carrier")}
    assert check(catalogue, company_type="llc", industry="mining") == {
        ("company_type", "unknown_company_type"),
        ("industry", "unknown_industry"),
    }


def test_unknown_carrier_still_reports_missing_base_documents(catalogue: RequirementsCatalogue) -> None:
    found = check(catalogue, carrier="china_unicorn", documents=[])
    assert found == {("carrier", "unknown_carrier"), ("documents", "missing_document")}


def test_unknown_fields_are_reported(catalogue: RequirementsCatalogue) -> None:
    assert check(catalogue, requestedNumber="4000123456", legal_representative__idNumber="x") == {
        ("requestedNumber", "unknown_field"),
        ("legal_representative.idNumber", "unknown_field"),
    }


def test_text_fields(catalogue: RequirementsCatalogue) -> None:
    assert check(catalogue, company_name="", contact_address="x" * 257, package=DELETE) == {
        ("company_name", "required"),
        ("contact_address", "too_long"),
        ("package", "required"),
    }


# --- check_application: collects everything, never raises ---------------------------


def test_every_failure_is_collected_in_one_call(catalogue: RequirementsCatalogue) -> None:
    data = valid_application_dict(
        credit_code=wrong_check_character(VALID_USCC, USCC_ALPHABET),
        legal_representative__id_number=wrong_check_character(LEGAL_REP_ID, "0123456789X"),
        agent=agent_dict(phone="abc"),
        destination_numbers=[MOBILE, MOBILE, "4001234567"],
        requested_number=None,
        activation_at="2025-10-09T09:00:00",
        carrier="nope",
    )
    assert codes(check_application(data, catalogue)) == {
        ("credit_code", "invalid_check_digit"),
        ("legal_representative.id_number", "invalid_check_digit"),
        ("agent.phone", "invalid_phone"),
        ("destination_numbers[1]", "duplicate"),
        ("destination_numbers[2]", "service_number_not_allowed"),
        ("requested_number", "number_or_criteria_required"),
        ("activation_at", "timezone_required"),
        ("carrier", "unknown_carrier"),
        ("documents", "missing_document"),  # the agent's documents
    }


@pytest.mark.parametrize("garbage", [None, [], "form", 42, {"": None}, {"documents": "all of them"}])
def test_garbage_is_reported_not_raised(catalogue: RequirementsCatalogue, garbage: Any) -> None:
    errors = check_application(garbage, catalogue)
    assert errors and all(isinstance(e, FieldError) for e in errors)


def test_every_error_has_a_message(catalogue: RequirementsCatalogue) -> None:
    errors = check_application(
        {"agent": {}, "number_criteria": {"contains": "x"}, "documents": [{}]}, catalogue
    )
    assert errors
    for error in errors:
        assert error.code and error.code.islower()
        assert len(error.message) > 10 and error.message.endswith(".")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300)
@given(
    field=st.sampled_from(sorted(ApplicationForm.model_fields)),
    value=json_values,
    nested=st.sampled_from(["", "legal_representative__", "agent__", "number_criteria__"]),
)
def test_check_application_never_raises(field: str, value: Any, nested: str) -> None:
    catalogue = load_catalogue()
    data = valid_application_dict(**{field: value})
    if nested:
        parent = nested.removesuffix("__")
        data[parent] = {"name": value, "id_number": value, "phone": value, "ends_with": value}
    errors = check_application(data, catalogue)
    assert all(isinstance(e, FieldError) for e in errors)
    if not errors:
        ApplicationForm.model_validate(data)


# --- validate_application and ValidationFailed -----------------------------------------


def test_validate_application_returns_normalised_model(catalogue: RequirementsCatalogue) -> None:
    form = validate_application(valid_application_dict(credit_code=VALID_USCC.lower()), catalogue)
    assert form.credit_code == VALID_USCC


def test_validate_application_raises_with_all_errors(catalogue: RequirementsCatalogue) -> None:
    with pytest.raises(ValidationFailed) as info:
        validate_application(valid_application_dict(carrier="x", destination_numbers=[]), catalogue)
    assert codes(info.value.errors) == {("carrier", "unknown_carrier"), ("destination_numbers", "too_few")}
    assert "2 field error(s)" in str(info.value)
    assert pickle.loads(pickle.dumps(info.value)).errors == info.value.errors


def test_field_error_is_frozen_and_serialisable() -> None:
    error = FieldError("credit_code", "invalid_check_digit", "Re-type it.")
    assert error.as_dict() == {
        "field": "credit_code",
        "code": "invalid_check_digit",
        "message": "Re-type it.",
    }
    with pytest.raises(AttributeError):
        error.code = "other"  # type: ignore[misc]


# --- masking ------------------------------------------------------------------------


def test_mask_id_number() -> None:
    assert mask_id_number("110101198001011234") == "110101********1234"
    assert mask_id_number(ID_ENDING_IN_X.lower()).endswith("451X")
    assert mask_id_number("12345") == "*****"
    assert mask_id_number("") == ""


@given(st.text(max_size=30))
def test_mask_id_number_never_reveals_birth_date(raw: str) -> None:
    masked = mask_id_number(raw)
    compact = raw.strip().replace(" ", "").upper()
    assert len(masked) == len(compact)
    if len(compact) == 18:
        assert masked[6:14] == "*" * 8


def test_mask_phone() -> None:
    assert mask_phone(MOBILE) == "138****8000"
    assert mask_phone("010-12345678") == "010****5678"
    assert mask_phone("123") == "***"


def test_validation_does_no_file_io(monkeypatch: pytest.MonkeyPatch) -> None:
    # The models are decoded inside Temporal workflows, which must not do I/O;
    # stdnum's full RIC check would read its region database.
    import builtins
    import io

    def forbidden(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("file I/O during validation")

    data = valid_application_dict(agent=agent_dict())
    monkeypatch.setattr(builtins, "open", forbidden)
    monkeypatch.setattr(io, "open", forbidden)
    form = ApplicationForm.model_validate(data)
    assert ApplicationForm.model_validate_json(form.model_dump_json()) == form
    with pytest.raises(ValidationError):
        ApplicationForm.model_validate(valid_application_dict(legal_representative__id_number="1" * 18))


def test_a_list_over_its_limit_is_reported_once_and_only_its_first_items_are_examined(
    catalogue: RequirementsCatalogue,
) -> None:
    docs = valid_application_dict()["documents"]
    unknown = [{**docs[0], "kind": "nonsense", "document_id": f"doc_{i}"} for i in range(5000)]
    errors = check_application(valid_application_dict(documents=docs + unknown), catalogue)
    assert errors[0] == FieldError(
        "documents", "too_many", f"Give at most {MAX_DOCUMENTS} documents (got {len(docs) + 5000})."
    )
    kinds = [e for e in errors if e.code == "unknown_document_kind"]
    assert len(kinds) == MAX_DOCUMENTS - len(docs)
    assert oversized_lists({"destination_numbers": ["x"] * 11, "documents": "not a list"}) == [
        FieldError("destination_numbers", "too_many", "Give at most 10 destination numbers (got 11).")
    ]


@pytest.mark.parametrize("hidden", ["\u202e", "\u2067", "\u200b", "\u200c", "\u200e", "\ufeff", "\u061c"])
def test_text_that_hides_its_meaning_is_refused_in_names_and_addresses(
    catalogue: RequirementsCatalogue, hidden: str
) -> None:
    docs = valid_application_dict()["documents"] + agent_documents()
    assert check(
        catalogue,
        company_name=f"示例{hidden}公司",
        contact_address=f"南山区{hidden}1 号",
        legal_representative__name=f"张{hidden}伟",
        agent=agent_dict(name=f"{hidden}李娜"),
        documents=docs,
    ) == {
        ("company_name", "hidden_characters"),
        ("contact_address", "hidden_characters"),
        ("legal_representative.name", "hidden_characters"),
        ("agent.name", "hidden_characters"),
    }
