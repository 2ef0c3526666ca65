"""What a carrier, company type and industry require (the domain catalogue)."""

from __future__ import annotations

from api.errors import InvalidInput, field_error
from api.schemas.requirements import CarrierOptions, Catalogue, DocumentKind, Package, Requirements
from api.services.documents import allowed_content_types
from domain.requirements import UnknownCarrier, UnknownCompanyType, UnknownIndustry, load_catalogue


def requirements(
    carrier: str, company_type: str, industry: str, has_agent: bool, max_upload_bytes: int
) -> Requirements:
    catalogue = load_catalogue()
    carrier, company_type, industry = (v.strip().lower() for v in (carrier, company_type, industry))
    # Every unknown value is reported, not only the first the catalogue trips on.
    errors = []
    if carrier not in catalogue.carriers:
        errors.append(
            field_error("carrier", UnknownCarrier.code, f"Use one of: {', '.join(catalogue.carrier_codes)}.")
        )
    else:
        entry = catalogue.carrier(carrier)
        if company_type not in entry.company_types:
            errors.append(
                field_error(
                    "company_type", UnknownCompanyType.code, f"Use one of: {', '.join(entry.company_types)}."
                )
            )
        if industry not in entry.industries:
            errors.append(
                field_error("industry", UnknownIndustry.code, f"Use one of: {', '.join(entry.industries)}.")
            )
    if errors:
        raise InvalidInput("Unknown carrier, company type or industry", errors=errors)
    kinds = catalogue.required_documents(carrier, company_type, industry, has_agent)
    return Requirements(
        carrier=carrier,
        company_type=company_type,
        industry=industry,
        has_agent=has_agent,
        documents=[DocumentKind(kind=k, label=catalogue.label(k)) for k in kinds],
        accepted_content_types=allowed_content_types(),
        max_upload_bytes=max_upload_bytes,
    )


def catalogue_overview(max_upload_bytes: int) -> Catalogue:
    catalogue = load_catalogue()
    return Catalogue(
        carriers=[
            CarrierOptions(
                code=c.code,
                name=c.name,
                company_types=list(c.company_types),
                industries=list(c.industries),
            )
            for c in catalogue.carriers.values()
        ],
        packages=[Package(code=code, label=label) for code, label in catalogue.packages.items()],
        document_kinds=[DocumentKind(kind=k, label=v) for k, v in catalogue.document_kinds.items()],
        accepted_content_types=allowed_content_types(),
        max_upload_bytes=max_upload_bytes,
    )
