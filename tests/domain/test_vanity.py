"""Tests for the vanity-number classifier.

The classifier uses precomputed window tables for speed, so most properties
compare it against `reference_tags`, a deliberately plain re-statement of the
documented tag definitions that shares no code with it.
"""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from domain import vanity
from domain.vanity import (
    ALL_TAGS,
    TIERS,
    Classification,
    classify,
    classify_suffix,
    load_tier_table,
    tier_for_tags,
    tier_price_fen,
    tier_rank,
)

RULES_PATH = Path(__file__).resolve().parents[2] / "domain" / "data" / "vanity_tiers.json"
RULES: dict[str, Any] = json.loads(RULES_PATH.read_text(encoding="utf-8"))
LUCKY_DIGITS: str = RULES["lucky_digits"]
LUCKY_GROUPS: list[str] = RULES["lucky_groups"]
FOUR_TAGS = frozenset({"has_four", "no_four", "fours_2plus"})
PATTERN_TAGS = ALL_TAGS - FOUR_TAGS
ALL_LUCKY = {"lucky_digits_3plus", "lucky_digits_5plus", "lucky_digits_all"}

suffixes = st.text(alphabet="0123456789", min_size=7, max_size=7)
numbers = suffixes.map(lambda s: "400" + s)
# Non-lucky replacements for 4 (default lucky digits are 6, 8, 9).
PLAIN_DIGITS = [d for d in "0123579" if d not in LUCKY_DIGITS]


def longest_run(s: str) -> int:
    best = run = 1
    for prev, cur in itertools.pairwise(s):
        run = run + 1 if cur == prev else 1
        best = max(best, run)
    return best


def reference_tags(suffix: str) -> set[str]:
    tags: set[str] = set()
    run = longest_run(suffix)
    for n, tag in ((4, "aaaa"), (5, "aaaaa"), (6, "aaaaaa")):
        if run >= n:
            tags.add(tag)
    if suffix[-1] == suffix[-2] == suffix[-3]:
        tags.add("aaa_end")
    for i in range(len(suffix) - 3):
        a, b, c, d = tuple(suffix[i : i + 4])
        if a == b and c == d and a != c:
            tags.add("aabb")
        if a == c and b == d and a != b:
            tags.add("abab")
        digits = [int(x) for x in (a, b, c, d)]
        if digits == list(range(digits[0], digits[0] + 4)):
            tags.add("abcd_up")
        if digits == list(range(digits[0], digits[0] - 4, -1)):
            tags.add("abcd_down")
    last4 = suffix[-4:]
    if suffix == suffix[::-1]:
        tags.update({"palindrome", "mirror"})
    if last4 == last4[::-1] and last4[0] != last4[1]:
        tags.add("mirror")
    if any(g in suffix for g in LUCKY_GROUPS):
        tags.add("lucky_group")
    lucky = sum(c in LUCKY_DIGITS for c in suffix)
    if lucky >= 3:
        tags.add("lucky_digits_3plus")
    if lucky >= 5:
        tags.add("lucky_digits_5plus")
    if lucky == 7:
        tags.add("lucky_digits_all")
    fours = suffix.count("4")
    tags.add("has_four" if fours else "no_four")
    if fours >= 2:
        tags.add("fours_2plus")
    return tags


# --- examples, one or more per pattern -------------------------------------------


@pytest.mark.parametrize(
    ("number", "expected_tags", "tier"),
    [
        (
            "4008888888",
            {"aaaa", "aaaaa", "aaaaaa", "aaa_end", "palindrome", "mirror"} | ALL_LUCKY,
            "premium",
        ),
        ("4000777770", {"aaaa", "aaaaa", "palindrome", "mirror"}, "gold"),
        ("4001688880", {"aaaa", "lucky_group", "lucky_digits_3plus", "lucky_digits_5plus"}, "silver"),
        ("4002222333", {"aaaa", "aabb", "aaa_end"}, "silver"),
        ("4001122335", {"aabb"}, "bronze"),
        ("4003121257", {"abab"}, "bronze"),
        ("4001236789", {"abcd_up", "lucky_digits_3plus"}, "bronze"),
        ("4009876500", {"abcd_down", "lucky_digits_3plus"}, "bronze"),
        ("4001230777", {"aaa_end"}, "bronze"),
        ("4001231221", {"mirror"}, "bronze"),
        ("4001235321", {"palindrome", "mirror"}, "silver"),
        ("4000005180", {"lucky_group"}, "bronze"),
        ("4003752000", {"lucky_group", "aaa_end"}, "bronze"),
        ("4006898691", {"lucky_digits_3plus", "lucky_digits_5plus"}, "bronze"),
        ("4006868686", {"abab", "palindrome", "mirror"} | ALL_LUCKY, "gold"),
        ("4001357902", set(), "standard"),
        ("4006901358", {"lucky_digits_3plus"}, "standard"),
    ],
)
def test_examples_without_four(number: str, expected_tags: set[str], tier: str) -> None:
    result = classify(number)
    assert set(result.tags) == expected_tags | {"no_four"}
    assert result.tier == tier
    assert result.has_four is False


@pytest.mark.parametrize(
    ("number", "must_have", "tier"),
    [
        ("4001234567", {"abcd_up", "has_four"}, "standard"),
        ("4006881314", {"lucky_group", "has_four"}, "standard"),
        ("4005201314", {"lucky_group", "has_four"}, "standard"),
        ("4007654321", {"abcd_down", "has_four"}, "standard"),
        ("4001357402", {"has_four"}, "economy"),
        ("4001340745", {"has_four", "fours_2plus"}, "economy"),
        # Even the longest run loses two tiers when it is made of 4s.
        ("4004444444", {"aaaaaa", "has_four", "fours_2plus"}, "silver"),
        ("4008888884", {"aaaaaa", "has_four"}, "gold"),
    ],
)
def test_examples_with_four(number: str, must_have: set[str], tier: str) -> None:
    result = classify(number)
    assert must_have <= set(result.tags)
    assert "no_four" not in result.tags
    assert result.tier == tier
    assert result.has_four is True


def test_full_result_shape() -> None:
    assert classify("4008888888") == Classification(
        tags=(
            "aaa_end",
            "aaaa",
            "aaaaa",
            "aaaaaa",
            "lucky_digits_3plus",
            "lucky_digits_5plus",
            "lucky_digits_all",
            "mirror",
            "no_four",
            "palindrome",
        ),
        tier="premium",
        min_monthly_spend_fen=RULES["tiers"]["premium"]["min_monthly_spend_fen"],
        has_four=False,
    )


def test_lucky_group_across_every_position() -> None:
    # Groups are found by different tables depending on where they start.
    for group in LUCKY_GROUPS:
        for start in range(7 - len(group) + 1):
            suffix = ("0" * start + group).ljust(7, "0")
            assert "lucky_group" in classify_suffix(suffix).tags, suffix


def test_result_is_frozen() -> None:
    result = classify("4001234567")
    with pytest.raises(AttributeError):
        result.tier = "premium"  # type: ignore[misc]


# --- invalid input -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "problem"),
    [
        ("4001", "10 digits"),
        ("", "10 digits"),
        ("abc", "10 digits"),
        ("40012345678", "10 digits"),
        ("3001234567", "start with 400"),
        ("8001234567", "start with 400"),
        ("400123456a", "digits"),
        ("400-123-45", "digits"),
        ("4001234 67", "digits"),
        ("400１２３４５６７", "digits"),
        ("400١٢٣٤٥٦٧", "digits"),
    ],
)
def test_invalid_numbers_raise_value_error(number: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        classify(number)


def test_display_form_is_rejected() -> None:
    with pytest.raises(ValueError, match="10 digits"):
        classify("400-123-4567")


@pytest.mark.parametrize("suffix", ["", "123456", "12345678", "12345a7", "123 567", "１２３４５６７"])
def test_invalid_suffixes_raise_value_error(suffix: str) -> None:
    with pytest.raises(ValueError, match="invalid 400 number suffix"):
        classify_suffix(suffix)


@pytest.mark.parametrize("value", [4001234567, None, b"4001234567", list("4001234567")])
def test_non_strings_raise_type_error(value: object) -> None:
    with pytest.raises(TypeError):
        classify(value)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        classify_suffix(value)  # type: ignore[arg-type]


@given(st.text(max_size=12))
@example("4001234567 ")
@example("400123456\n")
@example("0400123456")
def test_anything_not_400_plus_seven_ascii_digits_is_rejected(text: str) -> None:
    valid = len(text) == 10 and text.startswith("400") and all(c in "0123456789" for c in text)
    if valid:
        assert isinstance(classify(text), Classification)
    else:
        with pytest.raises(ValueError, match="invalid 400 number"):
            classify(text)


# --- properties ----------------------------------------------------------------------


@given(numbers)
@example("4008888888")
@example("4004444444")
@example("4000000000")
@example("4009999999")
def test_tags_match_the_reference_definitions(number: str) -> None:
    assert set(classify(number).tags) == reference_tags(number[3:])


def test_tags_match_reference_on_a_large_random_sample() -> None:
    rng = random.Random(400)
    for _ in range(20_000):
        suffix = f"{rng.randrange(10_000_000):07d}"
        assert set(classify_suffix(suffix).tags) == reference_tags(suffix), suffix


@given(numbers)
def test_tags_are_sorted_unique_and_known(number: str) -> None:
    tags = classify(number).tags
    assert list(tags) == sorted(set(tags))
    assert set(tags) <= ALL_TAGS


@given(numbers)
def test_deterministic_and_suffix_path_agrees(number: str) -> None:
    assert classify(number) == classify(number) == classify_suffix(number[3:])


@given(
    st.lists(st.sampled_from("0123456789"), min_size=7, max_size=7),
    st.sampled_from("0123456789"),
    st.integers(min_value=0, max_value=3),
)
def test_four_equal_consecutive_digits_are_tagged_aaaa(digits: list[str], digit: str, start: int) -> None:
    digits[start : start + 4] = digit * 4
    assert "aaaa" in classify_suffix("".join(digits)).tags


@given(
    st.lists(st.sampled_from("0123456789"), min_size=7, max_size=7),
    st.integers(min_value=0, max_value=6),
    st.integers(min_value=0, max_value=3),
    st.booleans(),
)
def test_straights_are_tagged(digits: list[str], first: int, start: int, up: bool) -> None:
    step = 1 if up else -1
    run = [first + step * i for i in range(4)]
    assume(all(0 <= d <= 9 for d in run))
    digits[start : start + 4] = [str(d) for d in run]
    assert ("abcd_up" if up else "abcd_down") in classify_suffix("".join(digits)).tags


@given(suffixes)
def test_tag_implications(suffix: str) -> None:
    tags = set(classify_suffix(suffix).tags)
    chains = [
        ("aaaaaa", "aaaaa"),
        ("aaaaa", "aaaa"),
        ("palindrome", "mirror"),
        ("lucky_digits_all", "lucky_digits_5plus"),
        ("lucky_digits_5plus", "lucky_digits_3plus"),
        ("fours_2plus", "has_four"),
    ]
    for stronger, weaker in chains:
        assert stronger not in tags or weaker in tags
    assert ("has_four" in tags) != ("no_four" in tags)


@given(numbers)
def test_has_four_is_exactly_a_four_in_the_suffix(number: str) -> None:
    result = classify(number)
    assert result.has_four == ("4" in number[3:])
    assert result.has_four == ("has_four" in result.tags)


@given(numbers)
def test_price_is_the_tier_price_from_the_data_file(number: str) -> None:
    result = classify(number)
    assert result.tier in TIERS
    assert result.min_monthly_spend_fen == tier_price_fen(result.tier)
    assert result.min_monthly_spend_fen == RULES["tiers"][result.tier]["min_monthly_spend_fen"]


@given(numbers)
def test_tier_follows_from_tags(number: str) -> None:
    result = classify(number)
    assert result.tier == tier_for_tags(result.tags)


@given(suffixes.filter(lambda s: "4" in s))
@example("4444444")
@example("8888884")
def test_a_four_never_reaches_the_top_tier(suffix: str) -> None:
    assert tier_rank(classify_suffix(suffix).tier) < tier_rank("premium")


@given(suffixes.filter(lambda s: "4" in s), st.sampled_from(PLAIN_DIGITS))
@example("8888884", "0")
@example("1231444", "7")
@example("6666444", "0")
def test_replacing_the_fours_never_lowers_the_tier(suffix: str, replacement: str) -> None:
    # Replacing every 4 with a digit not otherwise present keeps which digits
    # are equal, so the runs, pairs and mirrors stay; the premise rules out the
    # rare case where a 4 was part of a straight or of 1314.
    assume(replacement not in suffix)
    without_four = suffix.replace("4", replacement)
    before = classify_suffix(suffix)
    after = classify_suffix(without_four)
    assume(set(before.tags) - FOUR_TAGS <= set(after.tags))
    assert after.has_four is False
    assert tier_rank(before.tier) < tier_rank(after.tier)
    assert before.min_monthly_spend_fen <= after.min_monthly_spend_fen


@given(st.sets(st.sampled_from(sorted(PATTERN_TAGS))), st.sampled_from(sorted(PATTERN_TAGS)))
def test_a_pattern_tag_never_lowers_the_tier(tags: set[str], extra: str) -> None:
    for four_tags in (set(), {"has_four"}, {"has_four", "fours_2plus"}):
        assert tier_rank(tier_for_tags(tags | four_tags)) <= tier_rank(
            tier_for_tags(tags | four_tags | {extra})
        )


@given(st.sets(st.sampled_from(sorted(PATTERN_TAGS))))
def test_fours_never_raise_the_tier(tags: set[str]) -> None:
    none = tier_rank(tier_for_tags(tags | {"no_four"}))
    one = tier_rank(tier_for_tags(tags | {"has_four"}))
    several = tier_rank(tier_for_tags(tags | {"has_four", "fours_2plus"}))
    assert several <= one <= none


# --- tier table ----------------------------------------------------------------------


def test_tier_table_matches_tiers_and_data_file() -> None:
    table = load_tier_table()
    assert tuple(t.name for t in table) == TIERS
    assert [t.rank for t in table] == list(range(len(TIERS)))
    for info in table:
        assert info.min_monthly_spend_fen == RULES["tiers"][info.name]["min_monthly_spend_fen"]
        assert tier_price_fen(info.name) == info.min_monthly_spend_fen
        assert tier_rank(info.name) == info.rank
    prices = [t.min_monthly_spend_fen for t in table]
    assert prices == sorted(prices)
    assert len(set(prices)) == len(prices)


def test_tier_table_is_loaded_once() -> None:
    assert load_tier_table() is load_tier_table()


@pytest.mark.parametrize("bad", ["platinum", "", "Premium"])
def test_unknown_tier_raises(bad: str) -> None:
    with pytest.raises(ValueError, match="tier"):
        tier_price_fen(bad)
    with pytest.raises(ValueError, match="tier"):
        tier_rank(bad)


def test_unknown_tag_raises() -> None:
    with pytest.raises(ValueError, match="unknown vanity tags"):
        tier_for_tags(["aaaa", "shiny"])


def test_every_tier_is_reachable() -> None:
    reached = {
        classify(n).tier
        for n in ["4001340745", "4001357902", "4001122335", "4002222333", "4000777770", "4008888888"]
    }
    assert reached == set(TIERS)


# --- rule-file validation --------------------------------------------------------


def _rules_with(**changes: Any) -> dict[str, Any]:
    raw: dict[str, Any] = json.loads(RULES_PATH.read_text(encoding="utf-8"))
    raw.update(changes)
    return raw


def test_shipped_rule_file_parses() -> None:
    assert vanity._parse_rules(_rules_with()).tiers == load_tier_table()


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"tiers": {"standard": {"min_monthly_spend_fen": 1}}}, "must define exactly"),
        ({"default_tier": "platinum"}, "default_tier"),
        ({"floor_tier": "gold"}, "floor_tier is above"),
        ({"lucky_digits": "6a"}, "lucky_digits"),
        ({"lucky_groups": ["13145"]}, "lucky_groups"),
        ({"tag_tiers": {"shiny": "gold"}}, "unknown tag"),
        ({"tag_tiers": {"aaaa": "platinum"}}, "tag_tiers.aaaa"),
        ({"demotions": {"has_four": -1}}, "demotions.has_four"),
        ({"demotions": {"has_four": True}}, "demotions.has_four"),
    ],
)
def test_bad_rule_files_are_rejected(changes: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        vanity._parse_rules(_rules_with(**changes))


def test_tier_prices_must_not_decrease() -> None:
    tiers = json.loads(RULES_PATH.read_text(encoding="utf-8"))["tiers"]
    tiers["gold"]["min_monthly_spend_fen"] = 1
    with pytest.raises(ValueError, match="costs less"):
        vanity._parse_rules(_rules_with(tiers=tiers))


def test_tier_price_must_be_an_integer() -> None:
    tiers = json.loads(RULES_PATH.read_text(encoding="utf-8"))["tiers"]
    tiers["gold"]["min_monthly_spend_fen"] = 2000.0
    with pytest.raises(ValueError, match="non-negative integer"):
        vanity._parse_rules(_rules_with(tiers=tiers))
