"""Vanity-number (靓号) classification of 400 numbers.

Pure functions: no database, no network. The only I/O is reading the rule file
``domain/data/vanity_tiers.json`` once, on first use.

Patterns are read on the 7 digits after ``400`` (the *suffix*). Tags, fixed and
exported as :data:`ALL_TAGS`:

==================== ===========================================================
``aaaa``             4 or more identical consecutive digits (``8888``)
``aaaaa``            5 or more identical consecutive digits
``aaaaaa``           6 or more identical consecutive digits
``aaa_end``          the last 3 digits are identical (``…888``)
``aabb``             ``AABB`` anywhere, ``A != B`` (``1122``)
``abab``             ``ABAB`` anywhere, ``A != B`` (``1212``)
``abcd_up``          4 consecutive ascending digits anywhere (``1234``, ``6789``)
``abcd_down``        4 consecutive descending digits anywhere (``4321``)
``mirror``           the last 4 digits are ``ABBA`` with ``A != B``, or the
                     whole suffix is a palindrome
``palindrome``       the whole 7-digit suffix reads the same backwards
``lucky_group``      contains a lucky group (default ``168``, ``518``, ``520``,
                     ``1314``)
``lucky_digits_3plus`` at least 3 of the 7 digits are lucky (default 6, 8, 9)
``lucky_digits_5plus`` at least 5 of the 7 digits are lucky
``lucky_digits_all`` all 7 digits are lucky
``has_four``         the suffix contains the digit 4
``no_four``          the suffix does not contain the digit 4
``fours_2plus``      the suffix contains the digit 4 at least twice
==================== ===========================================================

Tiers, cheapest first, are :data:`TIERS`. The tier of a number is the best tier
any of its tags earns (``tag_tiers`` in the rule file, ``default_tier`` when
none does), then demoted by the largest step any of its 4-tags carries
(``demotions``), never below ``floor_tier``. Each tier's price (the minimum
monthly spend, CNY fen) is in the rule file too.

Speed: the importer classifies all 10,000,000 numbers, so a call is four dict
look-ups on precomputed tables of every 4-digit window plus one cached result
per distinct pattern combination; no regular expressions run per call.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import NamedTuple

__all__ = [
    "ALL_TAGS",
    "TIERS",
    "Classification",
    "TierInfo",
    "classify",
    "classify_suffix",
    "load_tier_table",
    "tier_for_tags",
    "tier_price_fen",
    "tier_rank",
]

PREFIX = "400"
SUFFIX_LENGTH = 7

# The names are part of the API (search filters and stored rows use them), so
# they live in code; only what they cost and which pattern earns which is data.
TIERS: tuple[str, ...] = ("economy", "standard", "bronze", "silver", "gold", "premium")
"""Tier names, cheapest first; a tier's rank is its index here."""

ALL_TAGS: frozenset[str] = frozenset(
    {
        "aaaa",
        "aaaaa",
        "aaaaaa",
        "aaa_end",
        "aabb",
        "abab",
        "abcd_up",
        "abcd_down",
        "mirror",
        "palindrome",
        "lucky_group",
        "lucky_digits_3plus",
        "lucky_digits_5plus",
        "lucky_digits_all",
        "has_four",
        "no_four",
        "fours_2plus",
    }
)

_RULES_RESOURCE = ("data", "vanity_tiers.json")
# Lucky groups are found by window look-ups, which see at most 4 digits.
_MAX_GROUP_LENGTH = 4


@dataclass(frozen=True, slots=True)
class Classification:
    """What a number is worth: its pattern tags, tier and minimum monthly spend."""

    tags: tuple[str, ...]
    tier: str
    min_monthly_spend_fen: int
    has_four: bool


@dataclass(frozen=True, slots=True)
class TierInfo:
    """A tier as priced by the rule file; ``rank`` is its index in :data:`TIERS`."""

    name: str
    rank: int
    min_monthly_spend_fen: int


@dataclass(frozen=True, slots=True)
class _Rules:
    tiers: tuple[TierInfo, ...]
    default_rank: int
    floor_rank: int
    lucky_digits: frozenset[str]
    lucky_groups: tuple[str, ...]
    tag_ranks: Mapping[str, int]
    demotions: Mapping[str, int]


# --- rule file -----------------------------------------------------------------


def _rank_of(name: object, where: str) -> int:
    if not isinstance(name, str) or name not in TIERS:
        raise ValueError(f"vanity rules: {where} must be one of {TIERS}, got {name!r}")
    return TIERS.index(name)


def _parse_rules(raw: object) -> _Rules:
    """Validate the rule file's content; a bad file must fail loudly, not misprice."""
    if not isinstance(raw, dict):
        raise ValueError("vanity rules: top level must be an object")

    tiers_raw = raw.get("tiers")
    if not isinstance(tiers_raw, dict) or set(tiers_raw) != set(TIERS):
        raise ValueError(f"vanity rules: 'tiers' must define exactly {TIERS}")
    tiers: list[TierInfo] = []
    for rank, name in enumerate(TIERS):
        entry = tiers_raw[name]
        price = entry.get("min_monthly_spend_fen") if isinstance(entry, dict) else None
        # bool is an int subclass; a price of `true` is a typo, not 1 fen.
        if not isinstance(price, int) or isinstance(price, bool) or price < 0:
            raise ValueError(
                f"vanity rules: tiers.{name}.min_monthly_spend_fen must be a "
                f"non-negative integer, got {price!r}"
            )
        if tiers and price < tiers[-1].min_monthly_spend_fen:
            raise ValueError(
                f"vanity rules: tier {name!r} costs less than the cheaper tier {tiers[-1].name!r}"
            )
        tiers.append(TierInfo(name, rank, price))

    default_rank = _rank_of(raw.get("default_tier"), "default_tier")
    floor_rank = _rank_of(raw.get("floor_tier"), "floor_tier")
    if floor_rank > default_rank:
        raise ValueError("vanity rules: floor_tier is above default_tier")

    digits = raw.get("lucky_digits")
    if not isinstance(digits, str) or not digits or not all(c in "0123456789" for c in digits):
        raise ValueError(f"vanity rules: lucky_digits must be a string of digits, got {digits!r}")

    groups = raw.get("lucky_groups")
    if not isinstance(groups, list) or not all(
        isinstance(g, str) and 1 <= len(g) <= _MAX_GROUP_LENGTH and all(c in "0123456789" for c in g)
        for g in groups
    ):
        raise ValueError(
            f"vanity rules: lucky_groups must be a list of 1-{_MAX_GROUP_LENGTH} digit "
            f"strings, got {groups!r}"
        )

    tag_tiers = raw.get("tag_tiers")
    if not isinstance(tag_tiers, dict):
        raise ValueError("vanity rules: 'tag_tiers' must be an object")
    tag_ranks: dict[str, int] = {}
    for tag, tier in tag_tiers.items():
        if tag not in ALL_TAGS:
            raise ValueError(f"vanity rules: tag_tiers names unknown tag {tag!r}")
        tag_ranks[tag] = _rank_of(tier, f"tag_tiers.{tag}")

    demotions_raw = raw.get("demotions")
    if not isinstance(demotions_raw, dict):
        raise ValueError("vanity rules: 'demotions' must be an object")
    demotions: dict[str, int] = {}
    for tag, steps in demotions_raw.items():
        if tag not in ALL_TAGS:
            raise ValueError(f"vanity rules: demotions names unknown tag {tag!r}")
        if not isinstance(steps, int) or isinstance(steps, bool) or steps < 0:
            raise ValueError(f"vanity rules: demotions.{tag} must be a non-negative integer")
        demotions[tag] = steps

    return _Rules(
        tiers=tuple(tiers),
        default_rank=default_rank,
        floor_rank=floor_rank,
        lucky_digits=frozenset(digits),
        lucky_groups=tuple(groups),
        tag_ranks=tag_ranks,
        demotions=demotions,
    )


@lru_cache(maxsize=1)
def _rules() -> _Rules:
    resource = resources.files("domain").joinpath(*_RULES_RESOURCE)
    return _parse_rules(json.loads(resource.read_text(encoding="utf-8")))


def load_tier_table() -> tuple[TierInfo, ...]:
    """Every tier with its rank and minimum monthly spend, cheapest first."""
    return _rules().tiers


def tier_rank(tier: str) -> int:
    """Position of ``tier`` in :data:`TIERS` (0 is cheapest)."""
    return _rank_of(tier, "tier")


def tier_price_fen(tier: str) -> int:
    """Minimum monthly spend of ``tier`` in CNY fen."""
    return _rules().tiers[tier_rank(tier)].min_monthly_spend_fen


def tier_for_tags(tags: Iterable[str]) -> str:
    """The tier a number with exactly these tags gets under the current rules."""
    rules = _rules()
    tag_set = set(tags)
    unknown = tag_set - ALL_TAGS
    if unknown:
        raise ValueError(f"unknown vanity tags: {sorted(unknown)}")
    # Tags only ever raise a number above the default tier; the 4 lowers it.
    base = max([rules.default_rank, *(rules.tag_ranks[t] for t in tag_set if t in rules.tag_ranks)])
    demotion = max((rules.demotions[t] for t in tag_set if t in rules.demotions), default=0)
    return TIERS[max(rules.floor_rank, base - demotion)]


# --- precomputed window tables -------------------------------------------------
#
# The suffix d0..d6 has four 4-digit windows, d0-d3, d1-d4, d2-d5, d3-d6. Every
# 4-digit pattern lies in one of them, and a lucky group of up to 4 digits
# starts either at offset 0 of windows 0-2 or anywhere in window 3. Each window
# table maps the window's text to an int of bit fields; the fields of the four
# tables do not overlap (except the digit counts, which are meant to add up), so
# adding the four look-ups gives a key that identifies the combination.
#
# Per window, 4 bits: a 3-bit shape (the shapes exclude each other within one
# window) and a lucky-group bit. Window position is kept because a run of 5 is
# two adjacent AAAA windows.

_SHAPE_NONE, _SHAPE_AAAA, _SHAPE_AABB, _SHAPE_ABAB, _SHAPE_UP, _SHAPE_DOWN = range(6)
_SHAPE_TAGS = {
    _SHAPE_AAAA: "aaaa",
    _SHAPE_AABB: "aabb",
    _SHAPE_ABAB: "abab",
    _SHAPE_UP: "abcd_up",
    _SHAPE_DOWN: "abcd_down",
}
_WINDOW_BITS = 4
_SHAPE_MASK = 0b111
_GROUP_BIT = 0b1000
_AAA_END = 1 << 16
_MIRROR_END = 1 << 17
_PALINDROME = 1 << 18
_LUCKY_SHIFT = 19  # 3 bits: count of lucky digits, 0-7
_FOUR_SHIFT = 22  # 3 bits: count of the digit 4, 0-7
_COUNT_MASK = 0b111


class _Tables(NamedTuple):
    w0: dict[str, int]
    w1: dict[str, int]
    w2: dict[str, int]
    w3: dict[str, int]
    by_key: dict[int, Classification]


def _shape(w: str) -> int:
    a, b, c, d = w[0], w[1], w[2], w[3]
    if a == b == c == d:
        return _SHAPE_AAAA
    if a == b and c == d:
        return _SHAPE_AABB
    if a == c and b == d:
        return _SHAPE_ABAB
    oa, ob, oc, od = map(ord, w)
    if ob - oa == oc - ob == od - oc == 1:
        return _SHAPE_UP
    if ob - oa == oc - ob == od - oc == -1:
        return _SHAPE_DOWN
    return _SHAPE_NONE


def _counts(digits: str, lucky: frozenset[str]) -> int:
    n_lucky = sum(c in lucky for c in digits)
    return (n_lucky << _LUCKY_SHIFT) | (digits.count("4") << _FOUR_SHIFT)


@lru_cache(maxsize=1)
def _tables() -> _Tables:
    rules = _rules()
    groups = rules.lucky_groups
    tables: list[dict[str, int]] = [{}, {}, {}, {}]
    for n in range(10_000):
        w = f"{n:04d}"
        shape = _shape(w)
        starts_group = any(w.startswith(g) for g in groups)
        for pos in range(3):
            bits = shape | (_GROUP_BIT if starts_group else 0)
            tables[pos][w] = bits << (pos * _WINDOW_BITS)
        tables[0][w] += _counts(w, rules.lucky_digits)

        a, b, c, d = w[0], w[1], w[2], w[3]
        last = shape | (_GROUP_BIT if any(g in w for g in groups) else 0)
        last <<= 3 * _WINDOW_BITS
        if b == c == d:
            last |= _AAA_END
        if a == d and b == c and a != b:
            last |= _MIRROR_END
        # Window 0 already counted d3, so only d4-d6 are counted here.
        tables[3][w] = last + _counts(w[1:], rules.lucky_digits)
    return _Tables(tables[0], tables[1], tables[2], tables[3], by_key={})


def _decode(key: int) -> tuple[str, ...]:
    tags: set[str] = set()
    aaaa_windows = 0
    for pos in range(4):
        bits = key >> (pos * _WINDOW_BITS)
        shape = bits & _SHAPE_MASK
        if shape:
            tags.add(_SHAPE_TAGS[shape])
        if shape == _SHAPE_AAAA:
            aaaa_windows |= 1 << pos
        if bits & _GROUP_BIT:
            tags.add("lucky_group")
    # n adjacent AAAA windows make a run of n + 3.
    if aaaa_windows & (aaaa_windows >> 1):
        tags.add("aaaaa")
    if aaaa_windows & (aaaa_windows >> 1) & (aaaa_windows >> 2):
        tags.add("aaaaaa")
    if key & _AAA_END:
        tags.add("aaa_end")
    if key & (_MIRROR_END | _PALINDROME):
        tags.add("mirror")
    if key & _PALINDROME:
        tags.add("palindrome")

    n_lucky = (key >> _LUCKY_SHIFT) & _COUNT_MASK
    if n_lucky >= 3:
        tags.add("lucky_digits_3plus")
    if n_lucky >= 5:
        tags.add("lucky_digits_5plus")
    if n_lucky == SUFFIX_LENGTH:
        tags.add("lucky_digits_all")

    n_four = (key >> _FOUR_SHIFT) & _COUNT_MASK
    tags.add("has_four" if n_four else "no_four")
    if n_four >= 2:
        tags.add("fours_2plus")
    return tuple(sorted(tags))


def _classification(key: int, by_key: dict[int, Classification]) -> Classification:
    tags = _decode(key)
    tier = tier_for_tags(tags)
    result = Classification(
        tags=tags,
        tier=tier,
        min_monthly_spend_fen=tier_price_fen(tier),
        has_four="has_four" in tags,
    )
    # Many keys share one outcome; caching the object per key skips building it
    # again, and the dataclass is frozen, so sharing it is safe.
    by_key[key] = result
    return result


# --- public classifier ---------------------------------------------------------


def _suffix_problem(suffix: str) -> str:
    if len(suffix) != SUFFIX_LENGTH:
        return f"must have {SUFFIX_LENGTH} digits after 400, got {len(suffix)} characters"
    return "must contain only the digits 0-9 (no spaces, dashes or full-width digits)"


def _number_problem(number: str) -> str:
    if len(number) != len(PREFIX) + SUFFIX_LENGTH:
        return f"must be 10 digits, got {len(number)} characters"
    if not number.startswith(PREFIX):
        return "must start with 400"
    return _suffix_problem(number[len(PREFIX) :])


def classify_suffix(suffix: str) -> Classification:
    """Classify the 7 digits after ``400``; the fast path for bulk imports."""
    w0, w1, w2, w3, by_key = _tables()
    try:
        key = w0[suffix[:4]] + w1[suffix[1:5]] + w2[suffix[2:6]] + w3[suffix[3:]]
    except (KeyError, TypeError):
        # Tables only hold 4 ASCII digits, so a miss means a bad suffix; a
        # wrong length also misses because suffix[3:] is then not 4 long.
        if not isinstance(suffix, str):
            raise TypeError(f"400 number suffix must be str, got {type(suffix).__name__}") from None
        raise ValueError(f"invalid 400 number suffix {suffix!r}: {_suffix_problem(suffix)}") from None
    if suffix[:3] == suffix[:3:-1]:
        key += _PALINDROME
    return by_key.get(key) or _classification(key, by_key)


def classify(number: str) -> Classification:
    """Classify a 10-digit ``400XXXXXXX`` number.

    Raises ValueError naming the problem when ``number`` is not exactly ``400``
    followed by 7 ASCII digits (display forms like ``400-123-4567`` included).
    """
    w0, w1, w2, w3, by_key = _tables()
    # Inlined rather than calling classify_suffix, and validated by the table
    # look-ups themselves: this runs 10 million times on import, and a separate
    # call or an isinstance check each cost over a tenth of the time.
    try:
        if number[:3] == PREFIX and len(number) == 10:
            key = w0[number[3:7]] + w1[number[4:8]] + w2[number[5:9]] + w3[number[6:]]
        else:
            key = -1
    except (KeyError, TypeError):
        key = -1
    if key >= 0:
        if number[3:6] == number[:6:-1]:
            key += _PALINDROME
        return by_key.get(key) or _classification(key, by_key)
    if not isinstance(number, str):
        raise TypeError(f"400 number must be str, got {type(number).__name__}")
    raise ValueError(f"invalid 400 number {number!r}: {_number_problem(number)}")
