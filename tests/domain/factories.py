"""Valid test data for applications, reused by workflow and API tests.

Check characters are computed with stdnum rather than typed in, so every value
here is valid for the same reason a real one is.
"""

from __future__ import annotations

import copy
import hashlib
from typing import Any

from stdnum.cn import ric, uscc

from domain.applicant import ApplicationForm


def make_uscc(first17: str) -> str:
    """A valid Unified Social Credit Code from its first 17 characters."""
    return first17 + uscc.calc_check_digit(first17)


def make_ric(first17: str) -> str:
    """A valid resident ID number from its first 17 digits."""
    # stdnum's calc_check_digit expects the full number and ignores the last
    # character, so any placeholder will do.
    return first17 + ric.calc_check_digit(first17 + "0")


def wrong_check_character(number: str, alphabet: str) -> str:
    """``number`` with its last character replaced by a different valid one."""
    last = number[-1]
    return number[:-1] + next(c for c in alphabet if c != last)


# Shenzhen (4403) enterprise (91), organisation code MA5F1B2C3.
VALID_USCC = make_uscc("91440300MA5F1B2C3")
# Shenzhen (4403) individual business (92).
VALID_USCC_INDIVIDUAL = make_uscc("92440300MA5DEF123")
# Beijing Dongcheng (110101), born 1980-01-01; Shenzhen Nanshan (440305), born 1985-06-14.
LEGAL_REP_ID = make_ric("11010119800101123")
AGENT_ID = make_ric("44030519850614002")
# Ends in X: the check character that most often gets mistyped as a digit.
ID_ENDING_IN_X = make_ric("11010519900307451")

MOBILE = "13800138000"
LANDLINE = "010-12345678"
LANDLINE_NORMALISED = "01012345678"


def sha256_of(label: str) -> str:
    return hashlib.sha256(label.encode()).hexdigest()


def document_dict(
    kind: str, *, document_id: str | None = None, content_type: str = "application/pdf"
) -> dict[str, Any]:
    ident = document_id or f"doc_{kind}"
    return {
        "kind": kind,
        "document_id": ident,
        "content_type": content_type,
        "sha256": sha256_of(ident),
    }


BASE_DOCUMENT_KINDS = ("business_licence", "legal_rep_id", "application_form")
AGENT_DOCUMENT_KINDS = ("agent_id", "authorisation_letter")


def legal_rep_dict(**overrides: Any) -> dict[str, Any]:
    return {"name": "张伟", "id_number": LEGAL_REP_ID, "phone": MOBILE, **overrides}


def agent_dict(**overrides: Any) -> dict[str, Any]:
    return {"name": "李娜", "id_number": AGENT_ID, "phone": "0755-86013388", **overrides}


def agent_documents() -> list[dict[str, Any]]:
    return [document_dict(kind) for kind in AGENT_DOCUMENT_KINDS]


def valid_application_dict(**overrides: Any) -> dict[str, Any]:
    """A complete, valid application (China Unicom, enterprise, general
    industry, no agent) as JSON-ready data.

    Keyword arguments replace top-level fields; ``a__b=value`` replaces a
    nested key (``legal_representative__phone="0755-1234567"``) and
    ``a=DELETE`` removes a field.
    """
    data: dict[str, Any] = {
        "organisation_id": "org_acme",
        "company_name": "深圳市示例科技有限公司",
        "credit_code": VALID_USCC,
        "company_type": "enterprise",
        "industry": "general",
        "carrier": "china_unicom",
        "legal_representative": legal_rep_dict(),
        "agent": None,
        "contact_address": "广东省深圳市南山区科技园南区 1 号",
        "destination_numbers": [MOBILE, LANDLINE],
        "documents": [document_dict(kind) for kind in BASE_DOCUMENT_KINDS],
        "package": "standard",
        "requested_number": "4000123456",
        "number_criteria": None,
        "activation_at": "2025-10-09T09:00:00+08:00",
    }
    for key, value in overrides.items():
        *parents, leaf = key.split("__")
        target = data
        for parent in parents:
            target = target[parent]
        if value is DELETE:
            target.pop(leaf, None)
        else:
            target[leaf] = copy.deepcopy(value)
    return data


def valid_application(**overrides: Any) -> ApplicationForm:
    return ApplicationForm.model_validate(valid_application_dict(**overrides))


class _Delete:
    def __repr__(self) -> str:
        return "DELETE"


DELETE: Any = _Delete()
