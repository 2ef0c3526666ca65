"""The OpenAPI document: FastAPI's, completed with what it cannot infer.

- the roles allowed on each route (from its ``allow(...)`` dependency), as
  ``x-roles`` and in the description;
- error responses as ``application/problem+json``;
- schemas of bodies that routes read as raw JSON (the application form, which is
  checked by the domain rules so that every failing field is reported at once).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from api.errors import PROBLEM_JSON
from api.permissions import PERMISSIONS, Action
from api.schemas.events import FeedEvent
from domain.applicant import ApplicationForm
from domain.requirements import load_catalogue

_REF = "#/components/schemas/{model}"


def _route_roles(route: APIRoute) -> list[str] | None:
    for dependency in route.dependant.dependencies:
        roles = getattr(dependency.call, "roles", None)
        if roles is not None:
            return [r.value for r in roles]
    return None


def _catalogue_enums() -> dict[str, list[str]]:
    """The values the server accepts for the catalogue's keys (domain/data/requirements.json),
    so that the document says what the server checks. Which company types and
    industries a carrier takes is narrower still; the server names the valid ones."""
    catalogue = load_catalogue()
    carriers = catalogue.carriers.values()
    return {
        "carrier": list(catalogue.carrier_codes),
        "company_type": sorted({t for c in carriers for t in c.company_types}),
        "industry": sorted({i for c in carriers for i in c.industries}),
        "kind": list(catalogue.document_kinds),
    }


def _with_enums(doc: dict[str, Any]) -> None:
    enums = _catalogue_enums()
    schemas = doc["components"]["schemas"]
    for name in ("carrier", "company_type", "industry"):
        schemas["ApplicationRequest"]["properties"][name]["enum"] = enums[name]
    schemas["DocumentRefRequest"]["properties"]["kind"]["enum"] = enums["kind"]
    for parameter in doc["paths"]["/v1/requirements"]["get"]["parameters"]:
        if parameter["name"] in enums:
            parameter["schema"]["enum"] = enums[parameter["name"]]
    upload = doc["paths"]["/v1/documents"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    schemas[upload["$ref"].rsplit("/", 1)[1]]["properties"]["kind"]["enum"] = enums["kind"]


def _application_request_schema() -> dict[str, dict[str, Any]]:
    """ApplicationForm's schema as a client sends it: the organisation comes from
    the API key, and a document may be given by its id alone."""
    schema = ApplicationForm.model_json_schema(ref_template=_REF)
    defs: dict[str, Any] = schema.pop("$defs", {})
    schema = copy.deepcopy(schema)
    schema["title"] = "ApplicationRequest"
    schema["required"] = [f for f in schema.get("required", []) if f != "organisation_id"]
    schema["properties"]["organisation_id"] = {
        **schema["properties"]["organisation_id"],
        "description": "Optional: taken from the API key; if given it must be the key's organisation.",
    }
    # Policy values are not in the model (a payload must decode after they
    # change), but a client generating code from this document needs them.
    schema["properties"]["package"] = {
        **schema["properties"]["package"],
        "enum": list(load_catalogue().packages),
        "description": "One of the catalogue's packages (GET /v1/requirements/catalogue).",
    }
    doc_ref = copy.deepcopy(defs.get("DocumentRef", {}))
    if doc_ref:
        doc_ref["title"] = "DocumentRefRequest"
        doc_ref["required"] = ["document_id"]
        doc_ref["description"] = (
            "An uploaded document. Only document_id is needed; kind, content_type and sha256 are filled "
            "in from the upload and, if given, must match it."
        )
        defs["DocumentRefRequest"] = doc_ref
        schema["properties"]["documents"] = {
            "type": "array",
            "items": {"$ref": _REF.format(model="DocumentRefRequest")},
        }
    return {"ApplicationRequest": schema, **defs}


def install_openapi(app: FastAPI, routers: Sequence[APIRouter]) -> None:
    def build() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        doc = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
            tags=app.openapi_tags,
        )
        schemas = doc.setdefault("components", {}).setdefault("schemas", {})
        for name, schema in _application_request_schema().items():
            schemas.setdefault(name, schema)
        feed = FeedEvent.model_json_schema(ref_template=_REF)
        schemas.update(feed.pop("$defs", {}))
        schemas["FeedEvent"] = feed
        _with_enums(doc)

        roles_by_op: dict[tuple[str, str], list[str]] = {}
        for route in (r for router in routers for r in router.routes):
            if isinstance(route, APIRoute) and (roles := _route_roles(route)) is not None:
                for method in route.methods or ():
                    roles_by_op[(route.path_format, method.lower())] = roles

        for path, operations in doc.get("paths", {}).items():
            for method, operation in operations.items():
                roles = roles_by_op.get((path, method))
                if path.startswith("/v1/codec/") and app.state.codec_requires_auth:
                    # Open in development only (api.codec); this process requires a key.
                    roles = [r.value for r in PERMISSIONS[Action.DECODE_PAYLOADS]]
                    operation["security"] = [{"ApiKey": []}]
                if roles is not None:
                    operation["x-roles"] = roles
                    text = operation.get("description", "").rstrip()
                    operation["description"] = f"{text}\n\n**Roles:** {', '.join(roles)}".lstrip()
                if "requestBody" in operation and "413" not in operation["responses"]:
                    # Every body is measured before anything else reads it (api.main.BodyLimitMiddleware).
                    operation["responses"]["413"] = {
                        "description": "The body is larger than allowed.",
                        "content": {"application/json": {"schema": {"$ref": _REF.format(model="Problem")}}},
                    }
                for status, response in operation.get("responses", {}).items():
                    content = response.get("content", {})
                    if status[:1] in "45" and "application/json" in content:
                        content[PROBLEM_JSON] = content.pop("application/json")
                    if status in ("429", "503"):
                        response.setdefault("headers", {})["Retry-After"] = {
                            "description": "Seconds to wait before retrying.",
                            "schema": {"type": "integer"},
                        }
                    if status == "401":
                        response.setdefault("headers", {})["WWW-Authenticate"] = {
                            "schema": {"type": "string"},
                        }
        app.openapi_schema = doc
        return doc

    app.openapi = build  # type: ignore[method-assign]
