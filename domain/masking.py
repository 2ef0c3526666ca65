"""Masking of personal data before it leaves the encrypted workflow payloads.

Resident ID numbers and personal phone numbers may appear in the event log, the
read model and logs only masked. The event log is kept for years and read by
dashboards, so what is written there is the masked form, never the original.
"""

from __future__ import annotations

from typing import Any

from domain.applicant import ApplicationForm, Person


def mask_id_number(number: str) -> str:
    """``110101198001011234`` -> ``110***********1234``: region and check digits
    stay, so an operator can tell two people apart without learning the birth date."""
    if len(number) <= 7:
        return "*" * len(number)
    return number[:3] + "*" * (len(number) - 7) + number[-4:]


def mask_phone(number: str) -> str:
    """``13800138000`` -> ``138****8000``."""
    if len(number) <= 7:
        return "*" * len(number)
    return number[:3] + "*" * (len(number) - 7) + number[-4:]


def _person(person: Person) -> dict[str, str]:
    return {
        "name": person.name,
        "id_number": mask_id_number(person.id_number),
        "phone": mask_phone(person.phone),
    }


def application_summary(form: ApplicationForm) -> dict[str, Any]:
    """What the event log and read model keep of an application: nothing that
    identifies a person in clear, and no document content (only kinds and ids)."""
    return {
        "company_name": form.company_name,
        "company_type": form.company_type,
        "industry": form.industry,
        "package": form.package,
        "legal_representative": _person(form.legal_representative),
        "agent": _person(form.agent) if form.agent else None,
        "destination_count": len(form.destination_numbers),
        "documents": [{"kind": d.kind, "document_id": d.document_id} for d in form.documents],
        "requested_number": form.requested_number,
        "activation_at": form.activation_at.isoformat() if form.activation_at else None,
    }
