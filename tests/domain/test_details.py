"""Reports of changed details: names checked, values checked like the
application's, kept masked as the holder's current details."""

from __future__ import annotations

from domain.applicant import ApplicationForm
from domain.details import apply_to_summary, check_details_change, merge_details
from domain.masking import application_summary
from domain.requirements import load_catalogue
from tests.domain.factories import valid_application_dict


def _form() -> dict[str, object]:
    return ApplicationForm.model_validate(valid_application_dict()).model_dump(mode="json")


def test_a_detail_of_a_person_not_on_record_must_be_given_whole() -> None:
    form = _form()
    form["agent"] = None
    partial = check_details_change(["agent.phone"], {"agent.phone": "13900139000"}, form, load_catalogue())
    assert [(e.field, e.code) for e in partial.errors] == [("values.agent.phone", "not_on_record")]
    agent = {"name": "李娜", "id_number": "11010519491231002X", "phone": "13900139000"}
    whole = check_details_change(["agent"], {"agent": agent}, form, load_catalogue())
    assert whole.errors == [] and whole.form is not None and whole.form["agent"]["name"] == "李娜"
    assert whole.masked() == {
        "agent": {"name": "李娜", "id_number": "110***********002X", "phone": "139****9000"}
    }


def test_without_a_form_on_record_each_value_is_checked_on_its_own() -> None:
    bad = check_details_change(
        ["legal_representative.phone", "company_name"],
        {"legal_representative.phone": "12", "company_name": " "},
        None,
        load_catalogue(),
    )
    assert [(e.field, e.code) for e in bad.errors] == [
        ("values.legal_representative.phone", "invalid_phone"),
        ("values.company_name", "required"),
    ]
    good = check_details_change(
        ["legal_representative.phone"],
        {"legal_representative.phone": "139 0013 9000"},
        None,
        load_catalogue(),
    )
    assert (
        good.errors == []
        and good.values == {"legal_representative.phone": "13900139000"}
        and good.form is None
    )


def test_a_person_named_whole_and_in_part_is_refused() -> None:
    checked = check_details_change(
        ["legal_representative", "legal_representative.phone"],
        {"legal_representative": {}, "legal_representative.phone": "13900139000"},
        _form(),
        load_catalogue(),
    )
    assert [(e.field, e.code) for e in checked.errors] == [("fields[1]", "overlapping")]


def test_the_latest_report_of_a_detail_wins_whatever_the_order() -> None:
    person = {"name": "李娜", "id_number": "110***********002X", "phone": "137****7000"}
    kept = merge_details({"legal_representative.phone": "139****9000"}, {"legal_representative": person})
    assert kept == {"legal_representative": person}
    kept = merge_details(kept, {"legal_representative.phone": "138****1111"})
    assert kept == {"legal_representative": {**person, "phone": "138****1111"}}
    summary = apply_to_summary(
        application_summary(ApplicationForm.model_validate(valid_application_dict())), kept
    )
    assert summary["legal_representative"] == {**person, "phone": "138****1111"}
