"""The document requirements catalogue and its data file."""

from __future__ import annotations

import copy
import json
from importlib import resources
from typing import Any

import pytest

from domain.requirements import (
    CatalogueError,
    RequirementsCatalogue,
    UnknownCarrier,
    UnknownCompanyType,
    UnknownIndustry,
    UnknownRequirementKey,
    load_catalogue,
)

CARRIERS = ("china_unicom", "china_telecom", "china_mobile")
COMPANY_TYPES = ("enterprise", "individual_business", "public_institution")
BASE = ["business_licence", "legal_rep_id", "application_form"]
ALL_KINDS = {
    "business_licence",
    "legal_rep_id",
    "agent_id",
    "authorisation_letter",
    "application_form",
    "industry_licence",
}


def raw_data() -> dict[str, Any]:
    text = resources.files("domain").joinpath("data/requirements.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def test_load_catalogue_is_cached() -> None:
    assert load_catalogue() is load_catalogue()


def test_packaged_data_covers_every_carrier_type_and_industry() -> None:
    catalogue = load_catalogue()
    assert set(catalogue.carrier_codes) == set(CARRIERS)
    assert set(catalogue.document_kinds) == ALL_KINDS
    for carrier in CARRIERS:
        assert set(catalogue.company_types(carrier)) >= set(COMPANY_TYPES)
        assert set(catalogue.industries(carrier)) >= {"general", "medical", "education", "finance"}


@pytest.mark.parametrize("carrier", CARRIERS)
@pytest.mark.parametrize("company_type", COMPANY_TYPES)
def test_base_documents_always_required(carrier: str, company_type: str) -> None:
    catalogue = load_catalogue()
    assert catalogue.required_documents(carrier, company_type, "general", has_agent=False) == BASE


@pytest.mark.parametrize("carrier", CARRIERS)
@pytest.mark.parametrize("industry", ["medical", "education", "finance"])
def test_regulated_industries_add_industry_licence(carrier: str, industry: str) -> None:
    required = load_catalogue().required_documents(carrier, "enterprise", industry, has_agent=False)
    assert required == [*BASE, "industry_licence"]


@pytest.mark.parametrize("carrier", CARRIERS)
def test_agent_adds_id_and_authorisation_letter(carrier: str) -> None:
    required = load_catalogue().required_documents(carrier, "enterprise", "finance", has_agent=True)
    # Catalogue declaration order, so clients always see the same list.
    assert required == [
        "business_licence",
        "legal_rep_id",
        "agent_id",
        "authorisation_letter",
        "application_form",
        "industry_licence",
    ]


def test_unknown_carrier() -> None:
    with pytest.raises(UnknownCarrier) as info:
        load_catalogue().required_documents("china_unicorn", "enterprise", "general", has_agent=False)
    error = info.value
    assert isinstance(error, ValueError)
    assert isinstance(error, UnknownRequirementKey)
    assert error.code == "unknown_carrier"
    assert error.value == "china_unicorn"
    assert set(error.known) == set(CARRIERS)
    assert "china_unicorn" in str(error) and "china_mobile" in str(error)


def test_unknown_company_type_and_industry() -> None:
    catalogue = load_catalogue()
    with pytest.raises(UnknownCompanyType) as type_info:
        catalogue.required_documents("china_mobile", "llc", "general", has_agent=False)
    assert type_info.value.carrier == "china_mobile"
    assert "enterprise" in str(type_info.value)
    with pytest.raises(UnknownIndustry):
        catalogue.required_documents("china_mobile", "enterprise", "mining", has_agent=False)
    with pytest.raises(UnknownCarrier):
        catalogue.company_types("nope")


def test_baseline_documents() -> None:
    catalogue = load_catalogue()
    assert catalogue.baseline_documents(has_agent=False) == BASE
    assert catalogue.baseline_documents(has_agent=True, carrier="unknown") == [
        "business_licence",
        "legal_rep_id",
        "agent_id",
        "authorisation_letter",
        "application_form",
    ]


def test_labels() -> None:
    catalogue = load_catalogue()
    assert "营业执照" in catalogue.label("business_licence")
    assert catalogue.label("not_a_kind") == "not_a_kind"


def test_catalogue_is_read_only() -> None:
    catalogue = load_catalogue()
    with pytest.raises(TypeError):
        catalogue.carriers["new"] = catalogue.carriers["china_mobile"]  # type: ignore[index]
    with pytest.raises(AttributeError):
        catalogue.base = ()  # type: ignore[misc]


def test_carrier_specific_rules_are_data() -> None:
    data = raw_data()
    data["carriers"]["china_mobile"]["company_types"]["public_institution"] = ["authorisation_letter"]
    data["carriers"]["china_telecom"]["base"] = ["business_licence", "legal_rep_id"]
    data["carriers"]["china_telecom"]["industries"]["telecom_resale"] = ["industry_licence"]
    catalogue = RequirementsCatalogue.from_dict(data)
    assert "authorisation_letter" in catalogue.required_documents(
        "china_mobile", "public_institution", "general", has_agent=False
    )
    assert catalogue.required_documents("china_telecom", "enterprise", "general", has_agent=False) == [
        "business_licence",
        "legal_rep_id",
    ]
    assert catalogue.required_documents("china_telecom", "enterprise", "telecom_resale", False)[-1] == (
        "industry_licence"
    )
    with pytest.raises(UnknownIndustry):
        catalogue.required_documents("china_unicom", "enterprise", "telecom_resale", has_agent=False)


def _break(path: list[str], value: Any) -> dict[str, Any]:
    data = copy.deepcopy(raw_data())
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return data


@pytest.mark.parametrize(
    ("path", "value", "fragment"),
    [
        (["defaults", "base"], ["business_licence", "passport"], "defaults.base"),
        (
            ["carriers", "china_unicom", "industries", "medical"],
            ["licence"],
            "carriers.china_unicom.industries",
        ),
        (["carriers", "china_unicom", "company_types"], {}, "company_types"),
        (["carriers"], [], "carriers"),
        (["document_kinds"], {}, "document_kinds"),
        (["document_kinds", "agent_id"], "", "document_kinds.agent_id"),
        (["accepted_content_types"], "application/pdf", "accepted_content_types"),
        (["packages"], {}, "packages"),
        (["packages"], None, "packages"),
        (["packages", "Gold "], "Gold", "packages.Gold"),
        (["packages", "standard"], "", "packages.standard"),
    ],
)
def test_malformed_catalogue_fails_loudly(path: list[str], value: Any, fragment: str) -> None:
    with pytest.raises(CatalogueError) as info:
        RequirementsCatalogue.from_dict(_break(path, value))
    assert fragment in str(info.value)


def test_catalogue_from_json_text() -> None:
    with pytest.raises(CatalogueError):
        RequirementsCatalogue.from_json("{not json")
    catalogue = RequirementsCatalogue.from_json(json.dumps(raw_data()))
    assert catalogue.carrier_codes == load_catalogue().carrier_codes
    assert catalogue.accepted_content_types == {"application/pdf", "image/jpeg", "image/png"}
