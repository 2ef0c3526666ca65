"""The holder's registered details after activation, and reports of their changes.

A holder reports a change of registered details (《电信网码号资源管理办法》 Art. 26)
by naming the changed fields as the application names them and giving each
one's new value. Only the holder's details can change this way; the number,
its carrier, package and activation are the registration's, and changing them
is a new application.

A new value is checked as the application checks that field: with the form on
record, the form with the new values must pass ``check_application`` (only the
changed fields' errors count); without one, each value must pass its field's
format rules. What is kept outside the encrypted form is masked as the summary
masks it (``domain.masking``): ID numbers and phones never in clear.

Pure: the API checks a report, the service workflow keeps the masked values as
the holder's current details, and the read model merges them into its summary.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Final

from pydantic import TypeAdapter, ValidationError

from domain.applicant import (
    FIELD_PATHS,
    ApplicationForm,
    Person,
    _from_pydantic,
    check_application,
    value_at,
)
from domain.errors import FieldError
from domain.masking import mask_id_number, mask_phone
from domain.requirements import RequirementsCatalogue

HOLDER_DETAILS: Final[tuple[str, ...]] = (
    "company_name",
    "company_type",
    "industry",
    "contact_address",
    "destination_numbers",
    "legal_representative",
    "legal_representative.name",
    "legal_representative.id_number",
    "legal_representative.phone",
    "agent",
    "agent.name",
    "agent.id_number",
    "agent.phone",
)
"""The registered details a report of changed details may name."""

_PERSONS: Final = ("legal_representative", "agent")

DetailValue = str | list[str] | dict[str, str] | None
"""A detail as kept outside the encrypted form: text, a list (destination
numbers), or a person (name, id_number, phone), personal data masked."""


class CheckedChange:
    """A report's errors, and when there are none, the new values normalised,
    masked, and (with a form on record) the whole form as it now stands."""

    def __init__(self, errors: list[FieldError], values: dict[str, Any], form: dict[str, Any] | None) -> None:
        self.errors = errors
        self.values = values
        self.form = form

    def masked(self) -> dict[str, DetailValue]:
        return {path: mask_detail(path, value) for path, value in self.values.items()}


def check_details_change(
    fields: Sequence[str],
    values: Mapping[str, Any],
    current: Mapping[str, Any] | None,
    catalogue: RequirementsCatalogue,
) -> CheckedChange:
    """Every reason the report naming ``fields`` with new ``values`` cannot be
    taken, against the form on record (``current``, as data; None if there is none).

    Errors name ``fields[i]`` for a name that is not a detail, and
    ``values.<name>`` (``values.<name>.<part>`` inside a person) for a value."""
    errors: list[FieldError] = []
    named: list[str] = []
    for index, name in enumerate(fields):
        if name not in FIELD_PATHS:
            errors.append(
                FieldError(
                    f"fields[{index}]",
                    "unknown_field",
                    f"Not a field of the application: name one of {', '.join(HOLDER_DETAILS)}.",
                )
            )
        elif name not in HOLDER_DETAILS:
            errors.append(
                FieldError(
                    f"fields[{index}]",
                    "not_a_detail",
                    f"{name} is not a registered detail of the holder: report one of "
                    f"{', '.join(HOLDER_DETAILS)} (a new number, carrier or package is a new application).",
                )
            )
        elif name in named:
            errors.append(
                FieldError(f"fields[{index}]", "duplicate", f"{name} is named twice: name it once.")
            )
        else:
            named.append(name)
    overlapping = [n for n in named if "." in n and n.split(".", 1)[0] in named]
    for name in overlapping:
        errors.append(
            FieldError(
                f"fields[{list(fields).index(name)}]",
                "overlapping",
                f"{name} is part of {name.split('.', 1)[0]}, also named: give it there.",
            )
        )
    for name in named:
        if name not in values:
            errors.append(FieldError(f"values.{name}", "required", f"Give the new value of {name}."))
    for key in values:
        if key not in fields:
            errors.append(
                FieldError(
                    f"values.{key}", "not_named", f"{key} is not named in fields: name it, or remove it."
                )
            )
    if errors:
        return CheckedChange(errors, {}, None)
    wanted = {name: values[name] for name in named}
    if current is not None:
        return _against_form(wanted, current, catalogue)
    return _on_their_own(wanted)


def _against_form(
    wanted: Mapping[str, Any], current: Mapping[str, Any], catalogue: RequirementsCatalogue
) -> CheckedChange:
    form: dict[str, Any] = copy.deepcopy(dict(current))
    absent = [
        FieldError(
            f"values.{path}",
            "not_on_record",
            f"There is no {path.split('.', 1)[0]} on record: report {path.split('.', 1)[0]} whole "
            "(name, id_number, phone).",
        )
        for path in wanted
        if "." in path and not isinstance(form.get(path.split(".", 1)[0]), Mapping)
    ]
    if absent:
        return CheckedChange(absent, {}, None)
    for path, value in wanted.items():
        _set(form, path, value)
    errors = [
        FieldError(f"values.{e.field}", e.code, e.message)
        for e in check_application(form, catalogue)
        if _within(e.field, wanted)
    ]
    if errors:
        return CheckedChange(errors, {}, None)
    try:
        normalised = ApplicationForm.model_validate(form).model_dump(mode="json")
    except ValidationError:
        # The form on record no longer reads as a form: the values on their own, then.
        return _on_their_own(wanted)
    return CheckedChange([], {path: value_at(normalised, path) for path in wanted}, normalised)


def _within(field: str, wanted: Mapping[str, Any]) -> bool:
    """Whether ``field`` (an error's) lies in one of the changed paths."""
    return any(field == path or field.startswith((path + ".", path + "[")) for path in wanted)


def _on_their_own(wanted: Mapping[str, Any]) -> CheckedChange:
    errors: list[FieldError] = []
    normalised: dict[str, Any] = {}
    for path, value in wanted.items():
        try:
            normalised[path] = _adapter(path).validate_python(value)
        except ValidationError as exc:
            for detail in exc.errors():
                error = _from_pydantic(detail)
                where = f"values.{path}" + (f".{error.field}" if error.field else "")
                errors.append(FieldError(where, error.code, error.message))
    if errors:
        return CheckedChange(errors, {}, None)
    shown = {p: (v.model_dump() if isinstance(v, Person) else v) for p, v in normalised.items()}
    return CheckedChange([], shown, None)


def _adapter(path: str) -> TypeAdapter[Any]:
    parent, _, leaf = path.rpartition(".")
    model = Person if parent in _PERSONS else ApplicationForm
    info = model.model_fields[leaf]
    return TypeAdapter(Annotated[info.annotation, *info.metadata])  # type: ignore[arg-type]


def _set(form: dict[str, Any], path: str, value: Any) -> None:
    parent, _, leaf = path.rpartition(".")
    holder = form
    if parent:
        if not isinstance(form.get(parent), dict):
            form[parent] = {}
        holder = form[parent]
    holder[leaf] = value


def mask_detail(path: str, value: Any) -> DetailValue:
    """``value`` of the detail at ``path`` as kept outside the encrypted form."""
    if value is None:
        return None
    leaf = path.rpartition(".")[2]
    if path in _PERSONS and isinstance(value, Mapping):
        return {
            "name": str(value.get("name", "")),
            "id_number": mask_id_number(str(value.get("id_number", ""))),
            "phone": mask_phone(str(value.get("phone", ""))),
        }
    if leaf == "id_number":
        return mask_id_number(str(value))
    if leaf == "phone":
        return mask_phone(str(value))
    if path == "destination_numbers" and isinstance(value, list):
        return [mask_phone(str(v)) for v in value]
    return str(value)


def merge_details(
    kept: Mapping[str, DetailValue], reported: Mapping[str, DetailValue]
) -> dict[str, DetailValue]:
    """The holder's current details after ``reported`` changes to those ``kept``:
    a newer value replaces an older one of the same field, of a part of it, or
    goes into the whole person kept before."""
    merged = {
        path: value
        for path, value in kept.items()
        if not any(path == new or path.startswith(new + ".") for new in reported)
    }
    for path, value in reported.items():
        parent, _, leaf = path.rpartition(".")
        person = merged.get(parent) if parent else None
        if isinstance(person, dict) and isinstance(value, str):
            merged[parent] = {**person, leaf: value}
        else:
            merged[path] = value
    return merged


def apply_to_summary(summary: dict[str, Any], details: Mapping[str, DetailValue]) -> dict[str, Any]:
    """The application summary (``domain.masking.application_summary``) with the
    holder's current details (masked) put where it keeps them."""
    out = copy.deepcopy(summary)
    for path, value in details.items():
        parent, _, leaf = path.rpartition(".")
        if parent:
            person = out.get(parent)
            out[parent] = {**(person if isinstance(person, dict) else {}), leaf: value}
        elif path == "destination_numbers" and isinstance(value, list):
            out["destination_numbers"] = value
            out["destination_count"] = len(value)
        else:
            out[path] = value
    return out
