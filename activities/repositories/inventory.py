"""All SQL on the national number inventory (``number_inventory``).

Lifecycle of a number::

    available ─hold─▶ held ─allocate─▶ allocated ─activate─▶ active ⇄ restricted/suspended/frozen
        ▲               │                  │                         │
        └──release──────┴──────────────────┘                         │ quarantine
        └──release_expired (hold expired, quarantine over)◀── quarantined ◀┘

Every state change is one conditional ``UPDATE ... WHERE <expected state>``:
PostgreSQL locks the row and re-checks the condition after any concurrent
writer commits, so of N callers racing for one number exactly one matches. The
schema backs this up: one row per number (primary key), one number per
registration (unique index), and a trigger that refuses to move a number in use
straight from one registration to another.

Every function is idempotent for the registration that calls it, because
Temporal retries activities: repeating a call that already succeeded returns
the same result instead of failing.
"""

from __future__ import annotations

import random
import re
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Generic, Literal, TypeVar

import asyncpg
from pydantic import BaseModel, ConfigDict, Field, field_validator

from domain.vanity import ALL_TAGS, TIERS, classify, tier_price_fen

__all__ = [
    "IN_SERVICE",
    "PRE_ACTIVATION",
    "STATUSES",
    "InvalidNumberState",
    "InventoryError",
    "NumberNotHeld",
    "NumberRecord",
    "NumberStatus",
    "RegistrationHoldsAnotherNumber",
    "SearchCriteria",
    "SearchPage",
    "activate",
    "allocate",
    "carrier_codes",
    "carrier_prefixes",
    "carriers_of_prefix",
    "count_numbers",
    "extend_hold",
    "forget_cached_layout",
    "get_number",
    "hold_matching",
    "hold_number",
    "insert_numbers",
    "number_held_by",
    "quarantine",
    "release",
    "release_expired",
    "search",
    "set_service_status",
]

NumberStatus = Literal[
    "available", "held", "allocated", "active", "restricted", "suspended", "frozen", "quarantined", "retired"
]
STATUSES: Final[tuple[str, ...]] = (
    "available",
    "held",
    "allocated",
    "active",
    "restricted",
    "suspended",
    "frozen",
    "quarantined",
    "retired",
)
PRE_ACTIVATION: Final[tuple[str, ...]] = ("held", "allocated")
IN_SERVICE: Final[tuple[str, ...]] = ("active", "restricted", "suspended", "frozen")

FIRST_NUMBER: Final = "4000000000"
END_NUMBER: Final = "4010000000"  # exclusive
UNASSIGNED_CARRIER: Final = "unassigned"

K = TypeVar("K")
V = TypeVar("V")

# Used with fullmatch: "$" would also accept a trailing newline.
_NUMBER_RE = re.compile(r"400[0-9]{7}")
_DIGITS_RE = re.compile(r"[0-9]+")
_CODE_RE = re.compile(r"[a-z][a-z0-9_]*")
_ONE_PER_REGISTRATION = "number_inventory_one_per_registration"
_SWEEP_BATCH = 5000
MAX_PAGE = 200

_COLUMNS = (
    "number, carrier_code, status, tier, tags, has_four, min_monthly_spend_fen, registration_id, "
    "hold_expires_at, quarantine_until, status_changed_at, version"
)
_COLUMNS_N = ", ".join(f"n.{c.strip()}" for c in _COLUMNS.split(","))


# --- errors --------------------------------------------------------------------


class InventoryError(Exception):
    """Base class of the inventory's business errors."""


class NumberNotHeld(InventoryError):
    """The number is not held (or allocated) by the registration that asked."""

    def __init__(self, number: str, registration_id: str, reason: str) -> None:
        super().__init__(f"number {number} is not held by registration {registration_id}: {reason}")
        self.number = number
        self.registration_id = registration_id
        self.reason = reason

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuilt from the constructor's arguments when unpickled (worker processes, retries).
        return (type(self), (self.number, self.registration_id, self.reason))


class InvalidNumberState(InventoryError):
    """The number belongs to the registration but is in a state the step cannot start from."""

    def __init__(self, number: str, status: str, action: str, allowed: Sequence[str]) -> None:
        super().__init__(
            f"cannot {action} number {number}: it is {status}, expected one of {', '.join(allowed)}"
        )
        self.number = number
        self.status = status
        self.action = action
        self.allowed = tuple(allowed)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.number, self.status, self.action, self.allowed))


class RegistrationHoldsAnotherNumber(InventoryError):
    """A registration holds at most one number; release the first before holding another."""

    def __init__(self, registration_id: str, held_number: str | None) -> None:
        super().__init__(
            f"registration {registration_id} already holds number {held_number}; release it first"
        )
        self.registration_id = registration_id
        self.held_number = held_number

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.registration_id, self.held_number))


# --- values --------------------------------------------------------------------


class NumberRecord(BaseModel):
    """One row of the inventory as the rest of the system sees it."""

    model_config = ConfigDict(frozen=True)

    number: str
    carrier_code: str
    status: NumberStatus
    tier: str
    tags: tuple[str, ...]
    has_four: bool
    min_monthly_spend_fen: int
    registration_id: str | None
    hold_expires_at: datetime | None
    quarantine_until: datetime | None
    status_changed_at: datetime
    version: int


def _digits(value: str | None, field: str, max_len: int) -> str | None:
    if value is None or value == "":
        return None
    value = value.strip().replace("-", "")
    if not _DIGITS_RE.fullmatch(value):
        raise ValueError(f"{field} must contain only the digits 0-9, got {value!r}")
    if len(value) > max_len:
        raise ValueError(f"{field} must be at most {max_len} digits, got {len(value)}")
    return value


class SearchCriteria(BaseModel):
    """What a caller is looking for; every filter is optional and they all must match.

    - ``starts_with``: the start of the full number, from ``400`` on (``4008``, ``400888``).
    - ``ends_with``: the end of the number (``8888``), up to all 10 digits.
    - ``contains``: digits anywhere in the 7 digits after ``400``.
    - ``tags``: vanity tags from :data:`domain.vanity.ALL_TAGS`, all required.
    - ``tier``: one tier from :data:`domain.vanity.TIERS`.
    - ``max_monthly_spend_fen``: the price ceiling (minimum monthly spend, in fen).
    Dashes are accepted in digit filters (``400-888``) and ignored.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    starts_with: str | None = None
    ends_with: str | None = None
    contains: str | None = None
    tags: list[str] = Field(default_factory=list)
    tier: str | None = None
    carrier: str | None = None
    exclude_four: bool = False
    max_monthly_spend_fen: int | None = Field(default=None, ge=0)
    available_only: bool = True

    @field_validator("starts_with")
    @classmethod
    def _check_starts_with(cls, value: str | None) -> str | None:
        value = _digits(value, "starts_with", 10)
        if value is not None and not (value.startswith("400") or "400".startswith(value)):
            raise ValueError(
                f"starts_with is matched from the first digit of the number, which is always 400; "
                f"got {value!r} (did you mean '400{value}'?)"
            )
        return value

    @field_validator("ends_with")
    @classmethod
    def _check_ends_with(cls, value: str | None) -> str | None:
        return _digits(value, "ends_with", 10)

    @field_validator("contains")
    @classmethod
    def _check_contains(cls, value: str | None) -> str | None:
        return _digits(value, "contains (matched in the 7 digits after 400)", 7)

    @field_validator("tags")
    @classmethod
    def _check_tags(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - ALL_TAGS)
        if unknown:
            raise ValueError(f"unknown tags {unknown}; known tags: {sorted(ALL_TAGS)}")
        return sorted(set(value))

    @field_validator("tier")
    @classmethod
    def _check_tier(cls, value: str | None) -> str | None:
        if value is not None and value not in TIERS:
            raise ValueError(f"unknown tier {value!r}; tiers are {list(TIERS)}")
        return value

    @field_validator("carrier")
    @classmethod
    def _check_carrier(cls, value: str | None) -> str | None:
        if value is not None and not _CODE_RE.fullmatch(value):
            raise ValueError(f"carrier must be a carrier code like 'china_unicom', got {value!r}")
        return value


@dataclass(frozen=True, slots=True)
class SearchPage:
    """One page of search results in number order.

    ``next_cursor`` goes back as ``after`` for the next page (None: no more).
    A sampled page starts at a random point and wraps around; ``seed`` (the
    starting number) goes back with the cursor to continue the same walk.
    """

    items: tuple[NumberRecord, ...]
    next_cursor: str | None
    sampled: bool = False
    seed: int | None = None


def _record(row: asyncpg.Record) -> NumberRecord:
    return NumberRecord.model_validate(dict(row))


def _check_number(number: str) -> str:
    if not isinstance(number, str) or not _NUMBER_RE.fullmatch(number):
        raise ValueError(f"invalid 400 number {number!r}: expected 400 followed by 7 digits")
    return number


def _check_aware(value: datetime, field: str) -> datetime:
    # A naive datetime would be read in the server's time zone: refuse the ambiguity.
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{field} must be timezone-aware, got {value!r}")
    return value


# --- reads ---------------------------------------------------------------------


async def get_number(conn: asyncpg.Connection, number: str) -> NumberRecord | None:
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM number_inventory WHERE number = $1", _check_number(number)
    )
    return _record(row) if row else None


async def number_held_by(conn: asyncpg.Connection, registration_id: str) -> NumberRecord | None:
    """The number a registration holds, has been allocated or has in service, if any."""
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM number_inventory WHERE registration_id = $1", registration_id
    )
    return _record(row) if row else None


async def count_numbers(conn: asyncpg.Connection, prefix: str = "400") -> int:
    lo, hi = _prefix_range(prefix)
    return int(
        await conn.fetchval(
            "SELECT count(*) FROM number_inventory WHERE number >= $1 AND number < $2", lo, hi
        )
    )


async def carriers_of_prefix(conn: asyncpg.Connection, digits: str) -> list[str]:
    """The carriers that hold numbers starting with ``digits`` (from 400 on), by
    the prefix table; empty when the prefix is unassigned.

    A prefix longer than a carrier's block lies within that block (the longest
    such block wins, as on import); a shorter one spans every block below it.
    """
    rows = await conn.fetch(
        """
        (SELECT carrier_code FROM carrier_prefix WHERE starts_with($1, prefix)
         ORDER BY length(prefix) DESC LIMIT 1)
        UNION
        SELECT carrier_code FROM carrier_prefix WHERE starts_with(prefix, $1) AND prefix <> $1
        """,
        digits,
    )
    return sorted(r["carrier_code"] for r in rows)


async def carrier_prefixes(conn: asyncpg.Connection, carrier: str) -> list[str]:
    """The prefix blocks of ``carrier``, in number order."""
    rows = await conn.fetch(
        "SELECT prefix FROM carrier_prefix WHERE carrier_code = $1 ORDER BY prefix", carrier
    )
    return [r["prefix"] for r in rows]


async def carrier_codes(conn: asyncpg.Connection) -> list[str]:
    """Every carrier a number can belong to (``unassigned`` included)."""
    return [r["code"] for r in await conn.fetch("SELECT code FROM carrier ORDER BY code")]


# --- search --------------------------------------------------------------------
#
# Every search returns numbers in number order, so that keyset pagination is
# "number > cursor". Each page is one SQL statement built from:
#
# - filters on the row (tier, tags, carrier, price, "no 4", status), written
#   exactly as the partial indexes' predicates so that the planner can use them;
# - one or more *legs*: disjoint slices of the number space, each read in number
#   order from an index and merged (UNION ALL + Merge Append) in number order.
#   Legs exist so that every slice is an ordered index scan that stops after a
#   page: a carrier is its prefix blocks; "ends with 888" is ten slices of the
#   (last 4 digits, number) index, ...0888 to ...9888.
# - bounds from the cursor or the random starting point of a sampled page.
#
# The legs select numbers only, and the page's rows are read after (see
# _page_sql). "contains" of 4+ digits is the exception: its trigram matches are
# gathered first, then filtered and sorted (see _contains).
#
# Values are inlined rather than bound: PostgreSQL only uses a partial index or
# an index on an expression when it can see the constant, and a generic plan for
# `LIKE $1` would walk the whole table. Everything inlined has been reduced to
# digits or [a-z0-9_] names by SearchCriteria's validators and is checked again
# by _lit.


def _lit(value: str, *, before: str = "", after: str = "") -> str:
    """A SQL string literal for a validated value, optionally wrapped in LIKE wildcards."""
    if not re.fullmatch(r"[a-z0-9_]*", value):
        raise ValueError(f"refusing to inline {value!r} into SQL")
    if before.strip("%") or after.strip("%"):
        raise ValueError("only % may surround an inlined value")
    return f"'{before}{value}{after}'"


Range = tuple[str, str]


class _TtlCache(Generic[K, V]):
    """A few values that change only when numbers are imported or prefixes configured.

    Both are rare, so reading them on every search and every allocation is
    wasted work; a value at most ``ttl`` seconds old is good enough, and the
    importer calls forget_cached_layout() when it changes them.
    """

    def __init__(self, ttl: float, size: int = 256) -> None:
        self._ttl = ttl
        self._size = size
        self._values: dict[K, tuple[float, V]] = {}

    def get(self, key: K) -> V | None:
        hit = self._values.get(key)
        if hit is None or time.monotonic() - hit[0] > self._ttl:
            return None
        return hit[1]

    def put(self, key: K, value: V) -> None:
        if len(self._values) >= self._size:
            self._values.clear()
        self._values[key] = (time.monotonic(), value)

    def clear(self) -> None:
        self._values.clear()


# Which prefix blocks each carrier has (None: any carrier), and where in a set
# of ranges the loaded numbers lie (to draw sampling starts from).
_BLOCKS: _TtlCache[str | None, list[Range]] = _TtlCache(ttl=10)
_EXTENTS: _TtlCache[tuple[tuple[Range, ...], bool], list[Range]] = _TtlCache(ttl=30)


def forget_cached_layout() -> None:
    """Forget cached prefix blocks and number extents (after an import or a prefix change)."""
    _BLOCKS.clear()
    _EXTENTS.clear()


async def _carrier_blocks(conn: asyncpg.Connection, carrier: str | None) -> list[Range]:
    blocks = _BLOCKS.get(carrier)
    if blocks is None:
        if carrier is not None:
            rows = await conn.fetch("SELECT prefix FROM carrier_prefix WHERE carrier_code = $1", carrier)
        else:
            rows = await conn.fetch("SELECT prefix FROM carrier_prefix")
        blocks = _merge_ranges([_prefix_range(r["prefix"]) for r in rows])
        _BLOCKS.put(carrier, blocks)
    return blocks


def _prefix_range(prefix: str) -> Range:
    """[lo, hi) of the numbers starting with ``prefix``, clipped to the 400 space."""
    lo = prefix.ljust(10, "0")
    hi = str(int(prefix) + 1).ljust(10, "0") if prefix else END_NUMBER
    return max(lo, FIRST_NUMBER), min(hi, END_NUMBER)


def _merge_ranges(ranges: Sequence[Range]) -> list[Range]:
    merged: list[Range] = []
    for lo, hi in sorted(r for r in ranges if r[0] < r[1]):
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(hi, merged[-1][1]))
        else:
            merged.append((lo, hi))
    return merged


def _intersect(ranges: Sequence[Range], lo: str, hi: str) -> list[Range]:
    return [(max(a, lo), min(b, hi)) for a, b in ranges if max(a, lo) < min(b, hi)]


def _next_number(number: str) -> str:
    return f"{int(number) + 1:010d}"


def _suffix_digits(criteria: SearchCriteria) -> list[str]:
    """Digits the criteria require after 400 (for the "no 4" contradiction check)."""
    parts = []
    if criteria.starts_with and len(criteria.starts_with) > 3:
        parts.append(criteria.starts_with[3:])
    if criteria.ends_with:
        parts.append(criteria.ends_with[-7:])
    if criteria.contains:
        parts.append(criteria.contains)
    return parts


@dataclass(frozen=True, slots=True)
class _Leg:
    """A slice of the number space read in number order; lo/hi bound it when it is a range."""

    sql: str
    lo: str = FIRST_NUMBER
    hi: str = END_NUMBER


@dataclass(frozen=True, slots=True)
class _Query:
    where: str  # conditions every row must meet
    legs: tuple[_Leg, ...]  # disjoint slices
    ranges: tuple[Range, ...]  # where matching numbers can be, sorted and disjoint
    # A condition to read every match of through its index first, then filter
    # and sort the matches (see _page_sql); None: read the legs in order.
    gather: str | None = None

    def legs_within(self, lo: str, hi: str) -> list[_Leg]:
        return [leg for leg in self.legs if leg.lo < hi and lo < leg.hi]


def _row_filters(criteria: SearchCriteria, available_only: bool) -> list[str] | None:
    """Conditions on the row itself, or None when no number can match.

    Contradictions are answered here without a query: PostgreSQL would
    otherwise walk an index to its end looking for rows that cannot exist.
    """
    clauses: list[str] = []
    tags = set(criteria.tags)
    if criteria.exclude_four:
        if tags & {"has_four", "fours_2plus"} or any("4" in d for d in _suffix_digits(criteria)):
            return None
        clauses.append("NOT has_four")
    for tag in sorted(tags):
        # One tag each, spelled as in the partial indexes' predicates.
        clauses.append(f"tags @> '{{{tag}}}'::text[]")
    tiers: list[str] = list(TIERS)
    if criteria.tier is not None:
        tiers = [criteria.tier]
    if criteria.max_monthly_spend_fen is not None:
        ceiling = criteria.max_monthly_spend_fen
        # Tier prices are data; a ceiling below every tier is known to be empty.
        tiers = [t for t in tiers if tier_price_fen(t) <= ceiling]
        clauses.append(f"min_monthly_spend_fen <= {int(ceiling)}")
    if not tiers:
        return None
    if len(tiers) == 1:
        clauses.append(f"tier = {_lit(tiers[0])}")
    elif len(tiers) < len(TIERS):
        clauses.append(f"tier IN ({', '.join(_lit(t) for t in tiers)})")
    if criteria.carrier is not None:
        clauses.append(f"carrier_code = {_lit(criteria.carrier)}")
    if available_only:
        clauses.append("status = 'available'")
    return clauses


def _ranges_sql(ranges: Sequence[Range]) -> str:
    return " OR ".join(f"(number >= {_lit(lo)} AND number < {_lit(hi)})" for lo, hi in ranges)


# Runs of one digit, by length, and the tag that every number holding such a
# run carries (domain.vanity: "aaaa" is 4 or more identical consecutive digits).
_RUN_TAGS = {4: "aaaa", 5: "aaaaa", 6: "aaaaaa", 7: "aaaaaa"}
# Up to this many digits, "contains" walks the numbers in order (measured on
# 10M: 3 digits 6 ms, 4 digits 68 ms this way against 22 ms by trigrams).
_SCAN_CONTAINS_UP_TO = 3


def _contains(digits: str, clauses: list[str]) -> bool:
    """Add the "contains" conditions; True when they lead to the (unordered) trigram index.

    The strategy follows from how many numbers match, which the fixed shape of
    the number space tells in advance (the planner's guess for LIKE '%x%' is a
    constant):
    - 1-3 digits match at least 1 number in 200: strpos(), which no index
      serves, so the scan stays in number order and stops after a page.
    - a run such as 8888 matches 1 in 4000, but its trigrams are all "888",
      which 1 in 200 numbers contain: the partial index of the run's tag
      holds every candidate, in number order.
    - other 4-7 digits: the trigram index, whose candidates are a few thousand
      at most; they are gathered first, then filtered and sorted (_page_sql).
    """
    suffix = "substr(number::text, 4)"
    if len(digits) <= _SCAN_CONTAINS_UP_TO:
        clauses.append(f"strpos({suffix}, {_lit(digits)}) > 0")
        return False
    if len(set(digits)) == 1:
        clauses.append(f"tags @> '{{{_RUN_TAGS[len(digits)]}}}'::text[]")
        clauses.append(f"strpos({suffix}, {_lit(digits)}) > 0")
        return False
    clauses.append(f"{suffix} LIKE {_lit(digits, before='%', after='%')}")
    return True


async def _plan(conn: asyncpg.Connection, criteria: SearchCriteria, available_only: bool) -> _Query | None:
    clauses = _row_filters(criteria, available_only)
    if clauses is None:
        return None
    ranges = [_prefix_range(criteria.starts_with or "400")]
    if criteria.carrier is not None or available_only:
        # Only numbers of configured prefixes are offered (the importer retires
        # the others), so skip the rest of the space, and other carriers' blocks.
        blocks = await _carrier_blocks(conn, criteria.carrier)
        ranges = [r for lo, hi in ranges for r in _intersect(blocks, lo, hi)]
    if not ranges:
        return None

    end = criteria.ends_with or ""
    if len(end) >= 7:
        # As long as the suffix: it names one number (or none).
        number = "400"[: 10 - len(end)] + end
        if not number.startswith("400") or not _intersect(ranges, number, _next_number(number)):
            return None
        where = " AND ".join([f"number = {_lit(number)}", *clauses])
        return _Query(where, (_Leg("TRUE"),), tuple(ranges))
    if end and (len(end) <= 2 or len(end) > 4):
        # 1-2 digits match one number in 10 or 100: a filter on an ordered
        # scan fills a page quickly. 5-6 digits refine the 4-digit slice below.
        # right() rather than LIKE '%88': the trigram index would claim that
        # LIKE and hand back every number ending in 88, unordered.
        clauses.append(f"right(number::text, {len(end)}) = {_lit(end)}")
    gather = None
    if criteria.contains and _contains(criteria.contains, clauses):
        gather = clauses[-1]

    legs: list[_Leg]
    if len(end) >= 3:
        # The (last 4 digits, number) index, read in number order: one slice
        # for 4+ digits, ten slices for 3 (…0888 to …9888).
        last4 = [end[-4:]] if len(end) >= 4 else [f"{d}{end}" for d in range(10)]
        legs = [_Leg(f"substr(number::text, 7) = {_lit(x)}") for x in last4]
        clauses.append(f"({_ranges_sql(ranges)})")
    elif gather:
        # The trigram index yields an unordered set; slicing it would read it
        # once per slice, so this is one leg filtered by range.
        legs = [_Leg(_ranges_sql(ranges))]
    else:
        legs = [_Leg(f"number >= {_lit(lo)} AND number < {_lit(hi)}", lo, hi) for lo, hi in ranges]
    return _Query(" AND ".join(clauses) or "TRUE", tuple(legs), tuple(ranges), gather)


def _page_sql(q: _Query, lo: str, hi: str, limit: int) -> str | None:
    """Up to ``limit`` matching rows with lo <= number < hi, in number order (None: none can be)."""
    bounds = f"number >= {_lit(lo)} AND number < {_lit(hi)}"
    if q.gather is not None:
        # The planner guesses LIKE '%37261%' at 1 number in 2,000 (the truth is
        # 1 in 30,000): given ORDER BY ... LIMIT it walks the number index for a
        # page, a million rows; given the status and ranges too, it ANDs the
        # trigram bitmap with millions of entries of number_inventory_available.
        # So the trigram matches are fetched alone (MATERIALIZED fences them),
        # then filtered and sorted: a few thousand rows.
        (leg,) = q.legs
        return (
            f"WITH matches AS MATERIALIZED (SELECT {_COLUMNS} FROM number_inventory WHERE {q.gather}) "
            f"SELECT * FROM matches WHERE ({leg.sql}) AND {q.where} AND {bounds} "
            f"ORDER BY number LIMIT {int(limit)}"
        )
    # Numbers first, rows after: when the filters read only the number (ends
    # with 1-2 digits, contains 1-3), the inner scan is an index-only scan that
    # rejects thousands of numbers without reading the table; then only the
    # page's rows are fetched.
    selects = [
        f"SELECT number FROM number_inventory WHERE ({leg.sql}) AND {q.where} AND {bounds} "
        f"ORDER BY number LIMIT {int(limit)}"
        for leg in q.legs_within(lo, hi)
    ]
    if not selects:
        return None
    numbers = selects[0]
    if len(selects) > 1:
        legs = " UNION ALL ".join(f"({sql})" for sql in selects)
        numbers = f"SELECT number FROM ({legs}) AS legs ORDER BY number LIMIT {int(limit)}"
    return f"SELECT {_COLUMNS} FROM number_inventory WHERE number IN ({numbers}) ORDER BY number"


async def _fetch(conn: asyncpg.Connection, q: _Query, lo: str, hi: str, limit: int) -> list[asyncpg.Record]:
    sql = _page_sql(q, lo, hi, limit) if lo < hi else None
    return list(await conn.fetch(sql)) if sql else []


async def _random_start(conn: asyncpg.Connection, q: _Query, available_only: bool, rng: random.Random) -> str:
    """A random number within the part of each range that holds numbers."""
    # Drawing over whole blocks would land most callers beyond the last loaded
    # number (a dev database holds one small block), and they would all wrap
    # round to the same first page. So draw within the loaded extent of each
    # range, weighted by its width.
    key = (q.ranges, available_only)
    extents = _EXTENTS.get(key)
    if extents is None:
        within = "number >= r.lo AND number < r.hi" + (" AND status = 'available'" if available_only else "")
        rows = await conn.fetch(
            f"""
            SELECT (SELECT min(number) FROM number_inventory WHERE {within}) AS lo,
                   (SELECT max(number) FROM number_inventory WHERE {within}) AS hi
            FROM unnest($1::bpchar[], $2::bpchar[]) AS r(lo, hi)
            """,
            [lo for lo, _ in q.ranges],
            [hi for _, hi in q.ranges],
        )
        extents = [(r["lo"], _next_number(r["hi"])) for r in rows if r["lo"] is not None]
        _EXTENTS.put(key, extents)
    if not extents:
        return q.ranges[0][0]
    widths = [int(hi) - int(lo) for lo, hi in extents]
    pick = rng.randrange(sum(widths))
    for (lo, _hi), width in zip(extents, widths, strict=True):
        if pick < width:
            return f"{int(lo) + pick:010d}"
        pick -= width
    raise AssertionError("unreachable: pick < sum(widths)")


async def search(
    conn: asyncpg.Connection,
    criteria: SearchCriteria,
    limit: int = 20,
    after: str | None = None,
    sample: bool = False,
    seed: int | None = None,
) -> SearchPage:
    """One page of numbers matching ``criteria``, in number order after ``after``.

    With ``sample=True`` the walk starts at a random number and wraps around
    once, so that callers do not all see, and all race for, the same first
    page. The start is drawn from ``seed`` (random when None); the page's
    ``seed`` is the start itself: pass it back with ``next_cursor`` to continue
    the same walk.
    """
    if not 1 <= limit <= MAX_PAGE:
        raise ValueError(f"limit must be between 1 and {MAX_PAGE}, got {limit}")
    if after is not None:
        _check_number(after)
    if sample and seed is None:
        seed = secrets.randbelow(2**31)
    q = await _plan(conn, criteria, criteria.available_only)
    if q is None:
        return SearchPage((), None, sampled=sample, seed=seed)
    if not sample:
        lo = FIRST_NUMBER if after is None else _next_number(after)
        return _page(await _fetch(conn, q, lo, END_NUMBER, limit + 1), limit, sampled=False, seed=None)

    if seed is not None and int(FIRST_NUMBER) <= seed < int(END_NUMBER):
        start = f"{seed:010d}"  # a walk under way: the seed we returned is its start
    else:
        start = await _random_start(conn, q, criteria.available_only, random.Random(seed))
        # Hand the start itself back as the seed: where numbers lie may change
        # between pages (imports, allocations), and a walk must not move.
        seed = int(start)
    rows: list[asyncpg.Record] = []
    if after is None or after >= start:
        # First leg of the walk: from the start (or the cursor) to the end.
        lo = start if after is None else _next_number(after)
        rows = await _fetch(conn, q, lo, END_NUMBER, limit + 1)
        wrap_lo = FIRST_NUMBER
    else:
        wrap_lo = _next_number(after)
    if len(rows) <= limit:
        # Then round to the numbers before the start.
        rows += await _fetch(conn, q, wrap_lo, start, limit + 1 - len(rows))
    return _page(rows, limit, sampled=True, seed=seed)


def _page(rows: list[asyncpg.Record], limit: int, *, sampled: bool, seed: int | None) -> SearchPage:
    items = tuple(_record(r) for r in rows[:limit])
    next_cursor = items[-1].number if len(rows) > limit else None
    return SearchPage(items, next_cursor, sampled=sampled, seed=seed)


# --- hold ----------------------------------------------------------------------

# A number can be taken when it is free, when a hold on it has run out, or when
# its quarantine is over, even if the sweeper has not got to it yet.
_TAKEABLE = """(
    status = 'available'
    OR (status = 'held' AND hold_expires_at <= statement_timestamp())
    OR (status = 'quarantined' AND quarantine_until <= statement_timestamp())
)"""


def _hold_set(registration: str, expires: str) -> str:
    """SET list that makes a row held by the registration bound at ``registration``."""
    return f"""
    status = 'held',
    previous_registration_id = CASE
        WHEN registration_id <> {registration} THEN registration_id ELSE previous_registration_id END,
    registration_id = {registration},
    hold_expires_at = {expires},
    quarantine_until = NULL,
    status_changed_at = CASE
        WHEN status = 'held' AND registration_id = {registration} THEN status_changed_at
        ELSE statement_timestamp() END,
    version = version + 1
"""


def _is_one_per_registration(exc: asyncpg.UniqueViolationError) -> bool:
    return getattr(exc, "constraint_name", None) == _ONE_PER_REGISTRATION


async def _fetchrow_guarded(conn: asyncpg.Connection, sql: str, *args: Any) -> asyncpg.Record | None:
    """fetchrow in a savepoint when the caller has a transaction open.

    A unique violation must not abort the caller's transaction: it is caught
    and answered. Outside a transaction the statement commits on its own and a
    failure aborts nothing, so the savepoint's two extra round trips are saved.
    """
    if conn.is_in_transaction():
        async with conn.transaction():
            return await conn.fetchrow(sql, *args)
    return await conn.fetchrow(sql, *args)


async def hold_number(
    conn: asyncpg.Connection,
    number: str,
    registration_id: str,
    expires_at: datetime,
    *,
    carrier_code: str | None = None,
) -> NumberRecord | None:
    """Hold ``number`` for ``registration_id`` until ``expires_at``.

    Returns the held record; if the registration already holds it, the expiry is
    moved to ``expires_at`` and the record returned. Returns None when the
    number is not in the inventory, belongs to someone else, or (given
    ``carrier_code``) to another carrier. Raises RegistrationHoldsAnotherNumber
    when the registration holds a different one.
    """
    _check_number(number)
    _check_aware(expires_at, "expires_at")
    try:
        row = await _fetchrow_guarded(
            conn,
            f"""
            UPDATE number_inventory SET {_hold_set("$2", "$3")}
            WHERE number = $1
              AND ({_TAKEABLE} OR (status = 'held' AND registration_id = $2))
              AND ($4::text IS NULL OR carrier_code = $4)
            RETURNING {_COLUMNS}
            """,
            number,
            registration_id,
            expires_at,
            carrier_code,
        )
    except asyncpg.UniqueViolationError as exc:
        if not _is_one_per_registration(exc):
            raise
        held = await number_held_by(conn, registration_id)
        raise RegistrationHoldsAnotherNumber(registration_id, held.number if held else None) from exc
    return _record(row) if row else None


async def switch_hold(
    conn: asyncpg.Connection,
    old: str | None,
    new: str,
    registration_id: str,
    expires_at: datetime,
    carrier_code: str,
) -> NumberRecord | None:
    """Move ``registration_id``'s hold from ``old`` to ``new``, in the caller's
    transaction. ``new`` is locked and found takeable first, so the old hold is
    let go only once the new one is certain; the registration holds one number
    at every instant another transaction can see. None, with nothing changed,
    when ``new`` cannot be had (taken, not in the inventory, another carrier's)."""
    _check_number(new)
    _check_aware(expires_at, "expires_at")
    free = await conn.fetchval(
        f"""SELECT true FROM number_inventory
            WHERE number = $1 AND carrier_code = $2
              AND ({_TAKEABLE} OR (status = 'held' AND registration_id = $3))
            FOR UPDATE""",
        new,
        carrier_code,
        registration_id,
    )
    if not free:
        return None
    if old is not None and old != new:
        await release(conn, old, registration_id)
    return await hold_number(conn, new, registration_id, expires_at, carrier_code=carrier_code)


async def hold_matching(
    conn: asyncpg.Connection, registration_id: str, criteria: SearchCriteria, expires_at: datetime
) -> NumberRecord | None:
    """Hold one available number matching ``criteria``, chosen at random.

    Idempotent per registration: if it already has a number (held or further),
    that number is returned (a hold's expiry is refreshed) and nothing new is
    taken. Returns None when no available number matches.
    """
    _check_aware(expires_at, "expires_at")
    q = await _plan(conn, criteria, available_only=True)
    if q is None:
        return await _refresh_existing(conn, registration_id, expires_at)
    rng = random.Random()
    start = await _random_start(conn, q, True, rng)
    checked_existing = False
    # From a random number to the end, then round from the beginning: callers
    # start at different places, and SKIP LOCKED steps over a row another
    # caller is taking right now, so they neither queue on one row nor take
    # the same one. One statement finds, locks and holds; it takes nothing if
    # the registration has a number already, which is then returned.
    for lo, hi in ((start, END_NUMBER), (FIRST_NUMBER, start)):
        legs = q.legs_within(lo, hi)
        rng.shuffle(legs)
        for leg in legs:
            try:
                row = await _fetchrow_guarded(
                    conn,
                    f"""
                    WITH {_matches_cte(q)} pick AS (
                        SELECT number FROM number_inventory
                        WHERE ({leg.sql}) AND {q.where} AND number >= $3 AND number < $4
                          {_among_matches(q)}
                          AND NOT EXISTS (SELECT 1 FROM number_inventory WHERE registration_id = $1)
                        ORDER BY number LIMIT 1
                        FOR UPDATE SKIP LOCKED
                    )
                    UPDATE number_inventory n SET {_hold_set("$1", "$2")}
                    FROM pick WHERE n.number = pick.number AND n.status = 'available'
                    RETURNING {_COLUMNS_N}
                    """,
                    registration_id,
                    expires_at,
                    lo,
                    hi,
                )
            except asyncpg.UniqueViolationError as exc:
                if not _is_one_per_registration(exc):
                    raise
                # The same registration won a concurrent call: that one's number is the answer.
                return await _refresh_existing(conn, registration_id, expires_at)
            if row is not None:
                return _record(row)
            if not checked_existing:
                # Nothing taken: no candidate here, or the registration has a number.
                checked_existing = True
                existing = await _refresh_existing(conn, registration_id, expires_at)
                if existing is not None:
                    return existing
    return None


def _matches_cte(q: _Query) -> str:
    # As in _page_sql: trigram matches are fetched alone, then picked from.
    if q.gather is None:
        return ""
    return f"matches AS MATERIALIZED (SELECT number FROM number_inventory WHERE {q.gather}),"


def _among_matches(q: _Query) -> str:
    # = ANY(array) walks the primary key over just those numbers, in order.
    return "" if q.gather is None else "AND number = ANY (ARRAY(SELECT number FROM matches))"


async def _refresh_existing(
    conn: asyncpg.Connection, registration_id: str, expires_at: datetime
) -> NumberRecord | None:
    """The registration's number, if it has one; a hold's expiry is moved to ``expires_at``."""
    row = await conn.fetchrow(
        f"""
        WITH refreshed AS (
            UPDATE number_inventory SET hold_expires_at = $2, version = version + 1
            WHERE registration_id = $1 AND status = 'held'
            RETURNING {_COLUMNS}
        )
        SELECT {_COLUMNS} FROM refreshed
        UNION ALL
        SELECT {_COLUMNS} FROM number_inventory WHERE registration_id = $1 AND status <> 'held'
        """,
        registration_id,
        expires_at,
    )
    return _record(row) if row else None


async def extend_hold(
    conn: asyncpg.Connection, number: str, registration_id: str, expires_at: datetime
) -> bool:
    """Move the expiry of the registration's hold; False if it no longer holds the number.

    A hold that has run out but that nobody has taken or swept yet is still the
    registration's, and is extended.
    """
    _check_aware(expires_at, "expires_at")
    result = await conn.fetchval(
        """
        UPDATE number_inventory SET hold_expires_at = $3, version = version + 1
        WHERE number = $1 AND registration_id = $2 AND status = 'held'
        RETURNING true
        """,
        _check_number(number),
        registration_id,
        expires_at,
    )
    return bool(result)


# --- transitions ---------------------------------------------------------------


async def _transition(
    conn: asyncpg.Connection,
    *,
    action: str,
    number: str,
    registration_id: str,
    from_states: Sequence[str],
    done_states: Sequence[str],
    set_sql: str,
    args: Sequence[Any] = (),
) -> NumberRecord:
    """Move the registration's number from ``from_states`` with ``set_sql``.

    Already in ``done_states`` (a retry of a call that succeeded) returns the
    record unchanged; anything else raises with the reason.
    """
    _check_number(number)
    row = await conn.fetchrow(
        f"""
        UPDATE number_inventory SET {set_sql}, version = version + 1
        WHERE number = $1 AND registration_id = $2 AND status = ANY($3::text[])
        RETURNING {_COLUMNS}
        """,
        number,
        registration_id,
        list(from_states),
        *args,
    )
    if row is not None:
        return _record(row)
    current = await get_number(conn, number)
    if current is None:
        raise NumberNotHeld(number, registration_id, "the number is not in the inventory")
    if current.registration_id != registration_id:
        raise NumberNotHeld(number, registration_id, f"it is {current.status} and not this registration's")
    if current.status in done_states:
        return current
    raise InvalidNumberState(number, current.status, action, [*from_states, *done_states])


async def allocate(conn: asyncpg.Connection, number: str, registration_id: str) -> NumberRecord:
    """held → allocated. A hold that ran out is still allocated if nobody took the number since."""
    return await _transition(
        conn,
        action="allocate",
        number=number,
        registration_id=registration_id,
        from_states=("held",),
        done_states=("allocated", *IN_SERVICE),
        set_sql="status = 'allocated', hold_expires_at = NULL, status_changed_at = statement_timestamp()",
    )


async def activate(conn: asyncpg.Connection, number: str, registration_id: str) -> NumberRecord:
    """allocated → active."""
    return await _transition(
        conn,
        action="activate",
        number=number,
        registration_id=registration_id,
        from_states=("allocated",),
        done_states=IN_SERVICE,
        set_sql="status = 'active', status_changed_at = statement_timestamp()",
    )


async def set_service_status(
    conn: asyncpg.Connection, number: str, registration_id: str, status: str
) -> NumberRecord:
    """Move an in-service number between active, restricted, suspended and frozen."""
    if status not in IN_SERVICE:
        raise ValueError(f"service status must be one of {list(IN_SERVICE)}, got {status!r}")
    return await _transition(
        conn,
        action=f"set service status {status} on",
        number=number,
        registration_id=registration_id,
        from_states=[s for s in IN_SERVICE if s != status],
        done_states=(status,),
        set_sql="status = $4, status_changed_at = statement_timestamp()",
        args=(status,),
    )


async def release(conn: asyncpg.Connection, number: str, registration_id: str) -> bool:
    """held/allocated → available. True if this call released it; False if it is not the
    registration's (any more). A number in service is quarantined, not released."""
    _check_number(number)
    row = await conn.fetchrow(
        """
        UPDATE number_inventory SET
            status = 'available',
            previous_registration_id = registration_id,
            registration_id = NULL,
            hold_expires_at = NULL,
            status_changed_at = statement_timestamp(),
            version = version + 1
        WHERE number = $1 AND registration_id = $2 AND status = ANY($3::text[])
        RETURNING status
        """,
        number,
        registration_id,
        list(PRE_ACTIVATION),
    )
    if row is not None:
        return True
    current = await get_number(conn, number)
    if current is not None and current.registration_id == registration_id:
        raise InvalidNumberState(number, current.status, "release", PRE_ACTIVATION)
    return False


async def quarantine(
    conn: asyncpg.Connection, number: str, registration_id: str, until: datetime
) -> NumberRecord:
    """In service (or allocated) → quarantined until ``until``; the registration lets go."""
    _check_number(number)
    _check_aware(until, "until")
    from_states = ("allocated", *IN_SERVICE)
    row = await conn.fetchrow(
        f"""
        UPDATE number_inventory SET
            status = 'quarantined',
            quarantine_until = $4,
            previous_registration_id = registration_id,
            registration_id = NULL,
            hold_expires_at = NULL,
            status_changed_at = statement_timestamp(),
            version = version + 1
        WHERE number = $1 AND registration_id = $2 AND status = ANY($3::text[])
        RETURNING {_COLUMNS}
        """,
        number,
        registration_id,
        list(from_states),
        until,
    )
    if row is not None:
        return _record(row)
    # A retry after success: the registration is cleared, but remembered.
    row = await conn.fetchrow(
        f"""
        SELECT {_COLUMNS} FROM number_inventory
        WHERE number = $1 AND status = 'quarantined' AND previous_registration_id = $2
        """,
        number,
        registration_id,
    )
    if row is not None:
        return _record(row)
    current = await get_number(conn, number)
    if current is None or current.registration_id != registration_id:
        status = current.status if current else "not in the inventory"
        raise NumberNotHeld(number, registration_id, f"it is {status} and not this registration's")
    raise InvalidNumberState(number, current.status, "quarantine", from_states)


# --- sweeping ------------------------------------------------------------------


async def release_expired(conn: asyncpg.Connection, now: datetime) -> int:
    """Return expired holds and finished quarantines to ``available``; how many were freed.

    Works in batches with SKIP LOCKED, so it neither blocks nor is blocked by
    registrations working on their own numbers, and several sweepers may run.
    """
    _check_aware(now, "now")
    total = 0
    for state, column, clear in (
        ("held", "hold_expires_at", "previous_registration_id = n.registration_id, registration_id = NULL"),
        ("quarantined", "quarantine_until", "registration_id = NULL"),
    ):
        while True:
            freed = await conn.fetchval(
                f"""
                WITH due AS (
                    SELECT number FROM number_inventory
                    WHERE status = '{state}' AND {column} <= $1
                    ORDER BY {column}
                    LIMIT {_SWEEP_BATCH}
                    FOR UPDATE SKIP LOCKED
                ), freed AS (
                    UPDATE number_inventory n SET
                        status = 'available',
                        {clear},
                        {column} = NULL,
                        status_changed_at = statement_timestamp(),
                        version = n.version + 1
                    FROM due
                    WHERE n.number = due.number AND n.status = '{state}' AND n.{column} <= $1
                    RETURNING 1
                )
                SELECT count(*) FROM freed
                """,
                now,
            )
            total += int(freed)
            if freed < _SWEEP_BATCH:
                break
    return total


# --- inserting -----------------------------------------------------------------


async def insert_numbers(conn: asyncpg.Connection, numbers: Sequence[str]) -> int:
    """Add a handful of numbers, classified and given their carrier; returns how many were new.

    For tests and one-off additions; whole blocks go through the importer. A
    number whose prefix no carrier has is added as retired (carrier
    ``unassigned``), as the importer does.
    """
    rows = []
    for number in numbers:
        c = classify(_check_number(number))
        rows.append((number, c.tier, list(c.tags), c.has_four, c.min_monthly_spend_fen))
    result = await conn.fetchval(
        """
        WITH input AS (
            SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::boolean[], $5::bigint[])
                AS i(number, tier, tags, has_four, price)
        ), ins AS (
            INSERT INTO number_inventory
                (number, carrier_code, status, tier, tags, has_four, min_monthly_spend_fen)
            SELECT i.number, coalesce(p.carrier_code, $6),
                   CASE WHEN p.carrier_code IS NULL THEN 'retired' ELSE 'available' END,
                   i.tier, string_to_array(i.tags, ','), i.has_four, i.price
            FROM input i
            LEFT JOIN LATERAL (
                SELECT carrier_code FROM carrier_prefix
                WHERE starts_with(i.number, prefix) ORDER BY length(prefix) DESC LIMIT 1
            ) p ON true
            ON CONFLICT (number) DO NOTHING
            RETURNING 1
        )
        SELECT count(*) FROM ins
        """,
        [r[0] for r in rows],
        [r[1] for r in rows],
        [",".join(r[2]) for r in rows],
        [r[3] for r in rows],
        [r[4] for r in rows],
        UNASSIGNED_CARRIER,
    )
    return int(result)
