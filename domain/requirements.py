"""Which documents an application must carry, and which packages it may choose.

The rules differ by carrier, company type and industry and carriers change them
without notice, so they live in ``domain/data/requirements.json`` rather than in
code. This module only loads, checks and answers questions about that data.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from types import MappingProxyType
from typing import ClassVar

_DATA_PACKAGE = __package__ or "domain"
_DATA_FILE = "data/requirements.json"


class CatalogueError(ValueError):
    """The catalogue data itself is malformed."""


class UnknownRequirementKey(ValueError):
    """A carrier, company type or industry that the catalogue does not know."""

    code: ClassVar[str] = "unknown_requirement_key"
    what: ClassVar[str] = "value"

    def __init__(self, value: str, known: Iterable[str], *, carrier: str | None = None) -> None:
        self.value = value
        self.known = tuple(known)
        self.carrier = carrier
        scope = f" for carrier {carrier!r}" if carrier else ""
        super().__init__(f"unknown {self.what} {value!r}{scope}; known: {', '.join(self.known) or 'none'}")


class UnknownCarrier(UnknownRequirementKey):
    code = "unknown_carrier"
    what = "carrier"


class UnknownCompanyType(UnknownRequirementKey):
    code = "unknown_company_type"
    what = "company type"


class UnknownIndustry(UnknownRequirementKey):
    code = "unknown_industry"
    what = "industry"


@dataclass(frozen=True)
class CarrierRequirements:
    code: str
    name: str
    base: tuple[str, ...]
    agent: tuple[str, ...]
    company_types: Mapping[str, tuple[str, ...]]
    industries: Mapping[str, tuple[str, ...]]


@dataclass(frozen=True)
class RequirementsCatalogue:
    # Declaration order of the kinds is kept and used to order answers, so a
    # client sees the same list in the same order every time.
    document_kinds: Mapping[str, str]
    accepted_content_types: frozenset[str]
    # The service packages an application may choose, code -> label, in offer order.
    packages: Mapping[str, str]
    base: tuple[str, ...]
    agent: tuple[str, ...]
    carriers: Mapping[str, CarrierRequirements]

    @classmethod
    def from_json(cls, text: str | bytes) -> RequirementsCatalogue:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CatalogueError(f"catalogue is not valid JSON: {exc}") from exc
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: object) -> RequirementsCatalogue:
        """Build and cross-check a catalogue; a typo in the data fails here, not
        later as a silently unsatisfiable requirement."""
        root = _mapping(data, "catalogue")
        kinds = _labels(root.get("document_kinds"), "document_kinds")
        known = frozenset(kinds)

        content_types = _str_list(root.get("accepted_content_types"), "accepted_content_types")
        if not content_types:
            raise CatalogueError("accepted_content_types: must not be empty")

        packages = _labels(root.get("packages"), "packages")

        defaults = _mapping(root.get("defaults"), "defaults")
        base = _kinds(defaults.get("base"), "defaults.base", known)
        agent = _kinds(defaults.get("agent"), "defaults.agent", known)

        carriers_raw = _mapping(root.get("carriers"), "carriers")
        if not carriers_raw:
            raise CatalogueError("carriers: must not be empty")
        carriers: dict[str, CarrierRequirements] = {}
        for code, raw in carriers_raw.items():
            path = f"carriers.{code}"
            entry = _mapping(raw, path)
            name = entry.get("name", code)
            if not isinstance(name, str):
                raise CatalogueError(f"{path}.name: must be a string")
            carriers[code] = CarrierRequirements(
                code=code,
                name=name,
                base=_kinds(entry["base"], f"{path}.base", known) if "base" in entry else base,
                agent=_kinds(entry["agent"], f"{path}.agent", known) if "agent" in entry else agent,
                company_types=_kinds_table(entry.get("company_types"), f"{path}.company_types", known),
                industries=_kinds_table(entry.get("industries"), f"{path}.industries", known),
            )
        return cls(
            document_kinds=MappingProxyType(kinds),
            accepted_content_types=frozenset(c.lower() for c in content_types),
            packages=MappingProxyType(packages),
            base=base,
            agent=agent,
            carriers=MappingProxyType(carriers),
        )

    @property
    def carrier_codes(self) -> tuple[str, ...]:
        return tuple(self.carriers)

    def carrier(self, carrier: str) -> CarrierRequirements:
        try:
            return self.carriers[carrier]
        except KeyError:
            raise UnknownCarrier(carrier, self.carriers) from None

    def company_types(self, carrier: str) -> tuple[str, ...]:
        return tuple(self.carrier(carrier).company_types)

    def industries(self, carrier: str) -> tuple[str, ...]:
        return tuple(self.carrier(carrier).industries)

    def label(self, kind: str) -> str:
        return self.document_kinds.get(kind, kind)

    def required_documents(
        self, carrier: str, company_type: str, industry: str, has_agent: bool
    ) -> list[str]:
        """Document kinds the case needs, in catalogue order, without repeats.

        Raises UnknownCarrier, UnknownCompanyType or UnknownIndustry (all
        ValueError) when the case is not in the catalogue.
        """
        entry = self.carrier(carrier)
        try:
            by_type = entry.company_types[company_type]
        except KeyError:
            raise UnknownCompanyType(company_type, entry.company_types, carrier=carrier) from None
        try:
            by_industry = entry.industries[industry]
        except KeyError:
            raise UnknownIndustry(industry, entry.industries, carrier=carrier) from None
        wanted = {*entry.base, *by_type, *by_industry}
        if has_agent:
            wanted.update(entry.agent)
        return self._ordered(wanted)

    def baseline_documents(self, has_agent: bool, carrier: str | None = None) -> list[str]:
        """What every case needs regardless of company type and industry.

        Used when the case itself is not (yet) valid, so a submitter still
        learns about the documents they are certainly missing.
        """
        entry = self.carriers.get(carrier) if carrier is not None else None
        base = entry.base if entry else self.base
        agent = entry.agent if entry else self.agent
        return self._ordered({*base, *agent} if has_agent else set(base))

    def _ordered(self, kinds: set[str]) -> list[str]:
        return [k for k in self.document_kinds if k in kinds]


@functools.cache
def load_catalogue() -> RequirementsCatalogue:
    """The packaged catalogue, read once per process."""
    text = resources.files(_DATA_PACKAGE).joinpath(_DATA_FILE).read_text(encoding="utf-8")
    return RequirementsCatalogue.from_json(text)


def _mapping(value: object, path: str) -> Mapping[str, object]:
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise CatalogueError(f"{path}: must be an object")
    return value


def _labels(value: object, path: str) -> dict[str, str]:
    """A non-empty object of lower-case codes to non-empty labels."""
    table = _mapping(value, path)
    if not table:
        raise CatalogueError(f"{path}: must not be empty")
    labels: dict[str, str] = {}
    for code, label in table.items():
        if code != code.strip().lower() or not code:
            raise CatalogueError(f"{path}.{code}: codes are lower-case, without spaces around")
        if not isinstance(label, str) or not label.strip():
            raise CatalogueError(f"{path}.{code}: label must be a non-empty string")
        labels[code] = label
    return labels


def _str_list(value: object, path: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise CatalogueError(f"{path}: must be a list of non-empty strings")
    return list(value)


def _kinds(value: object, path: str, known: frozenset[str]) -> tuple[str, ...]:
    kinds = _str_list(value, path)
    unknown = [k for k in kinds if k not in known]
    if unknown:
        raise CatalogueError(f"{path}: unknown document kind(s) {', '.join(unknown)}")
    return tuple(dict.fromkeys(kinds))


def _kinds_table(value: object, path: str, known: frozenset[str]) -> Mapping[str, tuple[str, ...]]:
    table = _mapping(value, path)
    if not table:
        raise CatalogueError(f"{path}: must not be empty")
    return MappingProxyType({key: _kinds(v, f"{path}.{key}", known) for key, v in table.items()})
