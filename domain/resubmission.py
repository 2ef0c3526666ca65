"""What a resubmission must be: the same application (organisation, carrier),
corrected where the change request said.

A change request names fields (``contact_address``, ``legal_representative.phone``)
and document kinds (``business_licence``); a resubmission must change each of
them, or the operator would review the same application again. Forms are
compared as data in their normalised form (``ApplicationForm.model_dump(mode="json")``):
a phone number typed with other separators is the same number, and a document
is compared by its content (``sha256``), so the same file uploaded again is no
new document.

Pure: the API checks a resubmission (and its evaluation) against the form last
accepted, the workflow's resubmit step against the form it holds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from domain.applicant import value_at
from domain.errors import FieldError


def resubmission_problems(
    previous: Mapping[str, Any] | None,
    new: Mapping[str, Any],
    *,
    carrier: str,
    organisation_id: str,
    fields: Sequence[str] = (),
    documents: Sequence[str] = (),
) -> list[FieldError]:
    """Why ``new`` cannot answer the change request (``fields``, ``documents``) of
    an application to ``carrier`` for ``organisation_id`` that stood at
    ``previous`` (None: not known, nothing is compared)."""
    problems: list[FieldError] = []
    # The number is held for this organisation and carrier: a resubmission
    # corrects the application, it does not turn it into another one.
    if str(new.get("carrier", "")).strip().lower() != carrier:
        problems.append(
            FieldError(
                "carrier",
                "cannot_change",
                f"The carrier stays {carrier}: withdraw and apply again to change it.",
            )
        )
    if new.get("organisation_id") != organisation_id:
        problems.append(
            FieldError(
                "organisation_id", "cannot_change", "The organisation of an application cannot change."
            )
        )
    if previous is not None:
        problems += still_unchanged(previous, new, fields, documents)
    return problems


def still_unchanged(
    previous: Mapping[str, Any], new: Mapping[str, Any], fields: Sequence[str], documents: Sequence[str]
) -> list[FieldError]:
    """One error for each field and document kind the change request named that
    ``new`` leaves as it was in ``previous``."""
    errors = [
        FieldError(
            name,
            "unchanged",
            f"The change request asked for {name} to be corrected, and it is the same as before: "
            "correct it, then resubmit.",
        )
        for name in fields
        if value_at(previous, name) == value_at(new, name)
    ]
    errors += [
        FieldError(
            "documents",
            "unchanged_document",
            f"The change request asked for a new {kind} document, and the one listed is the same as "
            f"before: upload the new one (POST /v1/documents/{{id}}/replace) and list it.",
        )
        for kind in documents
        if _contents(previous, kind) == _contents(new, kind)
    ]
    return errors


def _contents(form: Mapping[str, Any], kind: str) -> frozenset[str]:
    """What the documents of ``kind`` hold (their SHA-256, else their ids)."""
    documents = form.get("documents")
    if not isinstance(documents, list):
        return frozenset()
    return frozenset(
        str(d.get("sha256") or d.get("document_id"))
        for d in documents
        if isinstance(d, Mapping) and str(d.get("kind", "")).strip().lower() == kind
    )
