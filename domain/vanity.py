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

Tiers, cheapest first, are :data:`TIERS`. A number's tier follows from its
*score*, the sum of what its patterns are worth to a buyer (all figures in the
rule file):

* every maximal run of one digit (2 to 7 long): ``run_points[length]`` scaled
  by the digit's weight (8 weighs most, then 6 and 9; 0 little, 4 least),
  and more (``ending_run_percent``) when the run ends the number. A single
  other digit breaks a run: ``8888889`` is a run of six and a stray 9;
* every maximal straight, up or down (3 to 7 long): ``straight_points``;
* ``aabb``, ``abab``, ``mirror`` (not counted again for a palindrome),
  ``palindrome``, ``lucky_group`` and ``lucky_digits_all``: ``pattern_points``;
* each lucky digit: ``lucky_digit_points``; each 4: ``four_points`` (negative).

The tier is the highest whose ``tier_min_score`` the score reaches (economy
below standard's). Each tier's price (the minimum monthly spend, CNY fen) is in
the rule file too. docs/domain.md shows ranked examples.

Speed: the importer classifies all 10,000,000 numbers, so a call is six dict
look-ups on precomputed tables of every 4-digit window plus one cached result
per distinct combination of patterns and score; no regular expressions run per call.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping
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
    "tier_for_score",
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
    """What a number is worth: its pattern tags, score, tier and minimum monthly spend."""

    tags: tuple[str, ...]
    tier: str
    min_monthly_spend_fen: int
    has_four: bool
    score: int


@dataclass(frozen=True, slots=True)
class TierInfo:
    """A tier as priced by the rule file; ``rank`` is its index in :data:`TIERS`."""

    name: str
    rank: int
    min_monthly_spend_fen: int


@dataclass(frozen=True, slots=True)
class _Rules:
    tiers: tuple[TierInfo, ...]
    # The score each tier starts at, by rank; the cheapest tier takes the rest.
    min_scores: tuple[int, ...]
    lucky_digits: frozenset[str]
    lucky_groups: tuple[str, ...]
    digit_weights: Mapping[str, int]
    run_points: tuple[int, ...]  # by run length, 0-7
    ending_run_percent: int
    straight_points: tuple[int, ...]  # by straight length, 0-7
    pattern_points: Mapping[str, int]
    lucky_digit_points: int
    four_points: int


# Tags whose presence is worth points (mirror only when not a palindrome).
_PATTERN_POINT_TAGS = frozenset({"aabb", "abab", "mirror", "palindrome", "lucky_group", "lucky_digits_all"})


# --- rule file -----------------------------------------------------------------


def _rank_of(name: object, where: str) -> int:
    if not isinstance(name, str) or name not in TIERS:
        raise ValueError(f"vanity rules: {where} must be one of {TIERS}, got {name!r}")
    return TIERS.index(name)


def _int(value: object, where: str, *, minimum: int | None = 0) -> int:
    # bool is an int subclass; a price or weight of `true` is a typo, not 1.
    if not isinstance(value, int) or isinstance(value, bool) or (minimum is not None and value < minimum):
        kind = "an integer" if minimum is None else "a non-negative integer"
        raise ValueError(f"vanity rules: {where} must be {kind}, got {value!r}")
    return value


def _by_length(raw: object, where: str, shortest: int) -> tuple[int, ...]:
    """Points by length (shortest to 7) as a tuple indexed by length; each longer one worth more."""
    expected = {str(n) for n in range(shortest, SUFFIX_LENGTH + 1)}
    if not isinstance(raw, dict) or set(raw) != expected:
        raise ValueError(f"vanity rules: {where} must give points for lengths {shortest} to {SUFFIX_LENGTH}")
    points = [0] * (SUFFIX_LENGTH + 1)
    for n in range(shortest, SUFFIX_LENGTH + 1):
        points[n] = _int(raw[str(n)], f"{where}.{n}")
        if n > shortest and points[n] <= points[n - 1]:
            raise ValueError(f"vanity rules: {where}.{n} must be worth more than {where}.{n - 1}")
    return tuple(points)


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
        _int(price, f"tiers.{name}.min_monthly_spend_fen")
        assert isinstance(price, int)
        if tiers and price < tiers[-1].min_monthly_spend_fen:
            raise ValueError(
                f"vanity rules: tier {name!r} costs less than the cheaper tier {tiers[-1].name!r}"
            )
        tiers.append(TierInfo(name, rank, price))

    min_raw = raw.get("tier_min_score")
    if not isinstance(min_raw, dict) or set(min_raw) != set(TIERS[1:]):
        raise ValueError(f"vanity rules: 'tier_min_score' must give the score each of {TIERS[1:]} starts at")
    min_scores = [0] + [_int(min_raw[name], f"tier_min_score.{name}", minimum=None) for name in TIERS[1:]]
    if any(b <= a for a, b in itertools.pairwise(min_scores[1:])):
        raise ValueError("vanity rules: tier_min_score must rise with the tier")

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

    weights_raw = raw.get("digit_weight_percent")
    if not isinstance(weights_raw, dict) or set(weights_raw) != set("0123456789"):
        raise ValueError("vanity rules: digit_weight_percent must weigh each digit 0-9")
    weights = {d: _int(w, f"digit_weight_percent.{d}") for d, w in weights_raw.items()}

    patterns_raw = raw.get("pattern_points")
    if not isinstance(patterns_raw, dict) or set(patterns_raw) != _PATTERN_POINT_TAGS:
        raise ValueError(f"vanity rules: pattern_points must give points for {sorted(_PATTERN_POINT_TAGS)}")
    patterns = {tag: _int(p, f"pattern_points.{tag}") for tag, p in patterns_raw.items()}

    four_points = _int(raw.get("four_points"), "four_points", minimum=None)
    if four_points > 0:
        raise ValueError("vanity rules: four_points must not be positive (a 4 lowers a number)")

    return _Rules(
        tiers=tuple(tiers),
        min_scores=tuple(min_scores),
        lucky_digits=frozenset(digits),
        lucky_groups=tuple(groups),
        digit_weights=weights,
        run_points=_by_length(raw.get("run_points"), "run_points", 2),
        ending_run_percent=_int(raw.get("ending_run_percent"), "ending_run_percent", minimum=100),
        straight_points=_by_length(raw.get("straight_points"), "straight_points", 3),
        pattern_points=patterns,
        lucky_digit_points=_int(raw.get("lucky_digit_points"), "lucky_digit_points"),
        four_points=four_points,
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


def tier_for_score(score: int) -> str:
    """The tier a number with this score gets under the current rules."""
    min_scores = _rules().min_scores
    rank = 0
    for candidate in range(1, len(TIERS)):
        if score >= min_scores[candidate]:
            rank = candidate
    return TIERS[rank]


def _run_value(rules: _Rules, digit: str, length: int, ends: bool) -> int:
    points = rules.run_points[length] * rules.digit_weights[digit]
    if ends:
        points = points * rules.ending_run_percent // 100
    return points // 100


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
    # Runs and straights, which depend on which digits they are made of: for
    # windows d0-d3 and d3-d6, the points of those inside the window that do
    # not reach d3, and a code for the run and straight that reach d3 (joined
    # in ``joined``, by the pair of codes, into the run and straight through d3).
    d0: dict[str, tuple[int, int]]
    d3: dict[str, tuple[int, int]]
    joined: dict[int, int]
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
    d0 = {w: _window_digits(rules, w, edge_at_end=True) for w in tables[0]}
    d3 = {w: _window_digits(rules, w, edge_at_end=False) for w in tables[0]}
    return _Tables(tables[0], tables[1], tables[2], tables[3], d0, d3, joined={}, by_key={})


def _stretches(w: str) -> list[tuple[int, int, int]]:
    """(start, end, step) of every maximal stretch of ``w`` whose consecutive
    digits differ by the same step 0 (a run), +1 or -1 (a straight); single
    digits between them are stretches of their own, with step 0."""
    o = [ord(c) for c in w]
    out: list[tuple[int, int, int]] = []
    for step in (0, 1, -1):
        i = 0
        while i < len(o):
            j = i
            while j + 1 < len(o) and o[j + 1] - o[j] == step:
                j += 1
            if j > i or step == 0:
                out.append((i, j, step))
            i = j if j > i and step != 0 else j + 1
    return out


def _edge_code(digit: str, run: int, straight: int, direction: int) -> int:
    return ((int(digit) * 5 + run) * 5 + straight) * 3 + direction + 1


def _window_digits(rules: _Rules, w: str, *, edge_at_end: bool) -> tuple[int, int]:
    """(points, edge code) of a 4-digit window: d0-d3 (its edge is its last
    digit, d3) or d3-d6 (its edge is its first digit, d3, and it ends the number)."""
    edge = 3 if edge_at_end else 0
    points, run, straight, direction = 0, 1, 1, 0
    for start, end, step in _stretches(w):
        length = end - start + 1
        if edge in (start, end):
            if step == 0:
                run = length
            elif length > 1:
                straight, direction = length, step
        elif step == 0 and length >= 2:
            points += _run_value(rules, w[start], length, ends=not edge_at_end and end == 3)
        elif step != 0 and length >= 3:
            points += rules.straight_points[length]
    return points, _edge_code(w[edge], run, straight, direction)


def _join(rules: _Rules, left: int, right: int) -> int:
    """Points of the run and straight(s) through d3, from the two windows' edge codes."""
    (l_rest, l_dir), (r_rest, r_dir) = divmod(left, 3), divmod(right, 3)
    (l_rest, l_straight), (r_rest, r_straight) = divmod(l_rest, 5), divmod(r_rest, 5)
    (digit, l_run), (_, r_run) = divmod(l_rest, 5), divmod(r_rest, 5)
    points = 0
    run = l_run + r_run - 1
    if run >= 2:
        points += _run_value(rules, str(digit), run, ends=r_run == 4)
    if l_dir != 1 and l_dir == r_dir:  # the same direction (1 encodes none)
        points += rules.straight_points[l_straight + r_straight - 1]
    else:
        points += rules.straight_points[l_straight] + rules.straight_points[r_straight]
    return points


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


# The digits' points (runs, straights) join the pattern key in the cache key.
_DIGIT_POINTS_BITS = 16


def _digit_points(t: _Tables, first: str, last: str) -> int:
    """Points of the runs and straights of the suffix whose windows d0-d3 and d3-d6 these are."""
    p0, e0 = t.d0[first]
    p3, e3 = t.d3[last]
    pair = e0 * 1024 + e3
    joined = t.joined.get(pair)
    if joined is None:
        joined = t.joined[pair] = _join(_rules(), e0, e3)
    return p0 + p3 + joined


def _classification(key: int, digit_points: int, by_key: dict[int, Classification]) -> Classification:
    rules = _rules()
    tags = _decode(key)
    score = digit_points + sum(rules.pattern_points[t] for t in tags if t in rules.pattern_points)
    if "palindrome" in tags:
        score -= rules.pattern_points["mirror"]  # a palindrome is a mirror: counted once
    score += ((key >> _LUCKY_SHIFT) & _COUNT_MASK) * rules.lucky_digit_points
    score += ((key >> _FOUR_SHIFT) & _COUNT_MASK) * rules.four_points
    tier = tier_for_score(score)
    result = Classification(
        tags=tags,
        tier=tier,
        min_monthly_spend_fen=tier_price_fen(tier),
        has_four="has_four" in tags,
        score=score,
    )
    # Many numbers share one outcome; caching the object per key skips building
    # it again, and the dataclass is frozen, so sharing it is safe.
    by_key[(key << _DIGIT_POINTS_BITS) + digit_points] = result
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
    t = _tables()
    try:
        key = t.w0[suffix[:4]] + t.w1[suffix[1:5]] + t.w2[suffix[2:6]] + t.w3[suffix[3:]]
    except (KeyError, TypeError):
        # Tables only hold 4 ASCII digits, so a miss means a bad suffix; a
        # wrong length also misses because suffix[3:] is then not 4 long.
        if not isinstance(suffix, str):
            raise TypeError(f"400 number suffix must be str, got {type(suffix).__name__}") from None
        raise ValueError(f"invalid 400 number suffix {suffix!r}: {_suffix_problem(suffix)}") from None
    if suffix[:3] == suffix[:3:-1]:
        key += _PALINDROME
    points = _digit_points(t, suffix[:4], suffix[3:])
    return t.by_key.get((key << _DIGIT_POINTS_BITS) + points) or _classification(key, points, t.by_key)


def classify(number: str) -> Classification:
    """Classify a 10-digit ``400XXXXXXX`` number.

    Raises ValueError naming the problem when ``number`` is not exactly ``400``
    followed by 7 ASCII digits (display forms like ``400-123-4567`` included).
    """
    t = _tables()
    # Inlined rather than calling classify_suffix, and validated by the table
    # look-ups themselves: this runs 10 million times on import, and a separate
    # call or an isinstance check each cost over a tenth of the time.
    try:
        if number[:3] == PREFIX and len(number) == 10:
            key = t.w0[number[3:7]] + t.w1[number[4:8]] + t.w2[number[5:9]] + t.w3[number[6:]]
        else:
            key = -1
    except (KeyError, TypeError):
        key = -1
    if key >= 0:
        if number[3:6] == number[:6:-1]:
            key += _PALINDROME
        points = _digit_points(t, number[3:7], number[6:])
        return t.by_key.get((key << _DIGIT_POINTS_BITS) + points) or _classification(key, points, t.by_key)
    if not isinstance(number, str):
        raise TypeError(f"400 number must be str, got {type(number).__name__}")
    raise ValueError(f"invalid 400 number {number!r}: {_number_problem(number)}")
