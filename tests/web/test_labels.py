"""Every code the console can show has words for it (and, through the catalogue
test, a translation): a new state, event, tier or error code added elsewhere
shows up here before it shows up raw in front of an operator."""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path

import asyncpg

from api import errors
from api.permissions import Role
from app.settings import PROJECT_ROOT
from domain.lifecycle import Lifecycle
from domain.requirements import load_catalogue
from domain.service_rules import ArrearsStage, ChangeKind, DeadlineKind, RealnameStage, ServiceState
from domain.timeline import ActorRole, EventType, NextDeadlineKind, Stage, Status, WaitingFor
from domain.vanity import ALL_TAGS, TIERS
from web import labels, messages, views
from web.pages.applications import FORM_FIELDS
from web.pages.numbers import DETAIL_FIELDS
from workflows.contracts import RejectionReason


def _missing(codes: set[str], table: dict[str, str]) -> set[str]:
    return codes - table.keys()


def test_every_state_stage_role_and_deadline_has_words() -> None:
    enums: list[type[StrEnum]] = [
        Lifecycle,
        Stage,
        Status,
        WaitingFor,
        NextDeadlineKind,
        ServiceState,
        ArrearsStage,
        RealnameStage,
        DeadlineKind,
        ActorRole,
        Role,
    ]
    for enum in enums:
        assert not _missing({m.value for m in enum}, views.LABELS), enum.__name__


def test_every_event_tier_pattern_and_catalogue_entry_has_words() -> None:
    catalogue = load_catalogue()
    carriers = catalogue.carrier_codes
    expected = {
        "event": {e.value for e in EventType} | {k.value for k in ChangeKind} | {"PersonalDataRevealed"},
        "tier": set(TIERS),
        "tag": set(ALL_TAGS),
        "rejection": {r.value for r in RejectionReason},
        "document": set(catalogue.document_kinds),
        "package": set(catalogue.packages),
        "company_type": {t for c in carriers for t in catalogue.company_types(c)},
        "industry": {i for c in carriers for i in catalogue.industries(c)},
        "field": set(FORM_FIELDS) | set(DETAIL_FIELDS),
    }
    for kind, codes in expected.items():
        assert codes, kind  # read from where they are defined, not an empty set
        assert not _missing(codes, labels.KINDS[kind]), kind


async def test_every_inventory_status_has_words(db: asyncpg.Connection) -> None:
    # The CHECK that lists every status (others name some of them).
    check = await db.fetchval(
        """SELECT pg_get_constraintdef(c.oid) FROM pg_constraint c
           WHERE c.conrelid = 'number_inventory'::regclass AND c.contype = 'c'
             AND pg_get_constraintdef(c.oid) LIKE '%''available''%'"""
    )
    statuses = set(re.findall(r"'([a-z_]+)'::text", check))
    assert {"available", "held", "quarantined"} <= statuses
    assert not _missing(statuses, labels.NUMBER_STATUSES)


def test_every_error_code_the_api_gives_has_words() -> None:
    def subclasses(cls: type[errors.ApiError]) -> list[type[errors.ApiError]]:
        return [c for s in cls.__subclasses__() for c in (s, *subclasses(s))]

    # already_decided: the gateway's name for a workflow's refusal (api.services.workflow).
    codes = {c.code for c in subclasses(errors.ApiError)} | {errors.ApiError.code, "already_decided"}
    for folder in ("api", "web"):
        for source in Path(PROJECT_ROOT, folder).rglob("*.py"):
            codes |= set(re.findall(r'\bcode="([a-z_]+)"', source.read_text(encoding="utf-8")))
    assert {"wrong_stage", "cursor_mismatch", "username_taken"} <= codes
    assert not _missing(codes, messages.ERRORS)
