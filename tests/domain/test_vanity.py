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
    tier_for_score,
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
        ("4000777770", {"aaaa", "aaaaa", "palindrome", "mirror"}, "silver"),
        ("4001688880", {"aaaa", "lucky_group", "lucky_digits_3plus", "lucky_digits_5plus"}, "silver"),
        ("4002222333", {"aaaa", "aabb", "aaa_end"}, "bronze"),
        ("4001122335", {"aabb"}, "bronze"),
        ("4003121257", {"abab"}, "bronze"),
        ("4001236789", {"abcd_up", "lucky_digits_3plus"}, "bronze"),
        ("4009876500", {"abcd_down", "lucky_digits_3plus"}, "silver"),
        ("4001230777", {"aaa_end"}, "bronze"),
        ("4001231221", {"mirror"}, "bronze"),
        ("4001235321", {"palindrome", "mirror"}, "bronze"),
        ("4000005180", {"lucky_group"}, "bronze"),
        ("4003752000", {"lucky_group", "aaa_end"}, "bronze"),
        ("4006898691", {"lucky_digits_3plus", "lucky_digits_5plus"}, "bronze"),
        ("4006868686", {"abab", "palindrome", "mirror"} | ALL_LUCKY, "silver"),
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
        ("4001234567", {"abcd_up", "has_four"}, "gold"),
        ("4006881314", {"lucky_group", "has_four"}, "bronze"),
        ("4005201314", {"lucky_group", "has_four"}, "standard"),
        ("4007654321", {"abcd_down", "has_four"}, "gold"),
        ("4001357402", {"has_four"}, "economy"),
        ("4001340745", {"has_four", "fours_2plus"}, "economy"),
        # The longest run is worth little when it is made of 4s.
        ("4004444444", {"aaaaaa", "has_four", "fours_2plus"}, "bronze"),
        ("4008888884", {"aaaaaa", "has_four"}, "gold"),
    ],
)
def test_examples_with_four(number: str, must_have: set[str], tier: str) -> None:
    result = classify(number)
    assert must_have <= set(result.tags)
    assert "no_four" not in result.tags
    assert result.tier == tier
    assert result.has_four is True


# What a buyer would pay most for first (docs/domain.md shows the same table):
# 8 weighs more than 6 and 9, these more than 0; a single stray digit breaks a
# run; a run that ends the number is worth more; every 4 lowers a number.
RANKED = [
    ("4008888888", "premium"),
    ("4006666666", "premium"),
    ("4001111111", "premium"),
    ("4006888888", "premium"),
    ("4000000000", "gold"),
    ("4008888889", "gold"),
    ("4001234567", "gold"),
    ("4008888880", "gold"),
    ("4008888884", "gold"),
    ("4001688888", "gold"),
    ("4006668888", "gold"),
    ("4008886888", "silver"),
    ("4006868686", "silver"),
    ("4000008888", "silver"),
    ("4001238888", "silver"),
    ("4001688880", "silver"),
    ("4000000001", "silver"),
    ("4008888000", "silver"),
    ("4006666000", "silver"),
    ("4001112222", "silver"),
    ("4001000001", "bronze"),
    ("4001681688", "bronze"),
    ("4002222333", "bronze"),
    ("4001680168", "bronze"),
    ("4001212121", "bronze"),
    ("4008008008", "bronze"),
    ("4001231221", "bronze"),
    ("4001122335", "bronze"),
    ("4003121257", "bronze"),
    ("4001231234", "standard"),
    ("4005201314", "standard"),
    ("4001357902", "standard"),
    ("4001357402", "economy"),
    ("4001340745", "economy"),
]


@pytest.mark.parametrize(("rank", "number", "tier"), [(i, n, t) for i, (n, t) in enumerate(RANKED)])
def test_numbers_rank_in_the_order_a_buyer_would_pay(rank: int, number: str, tier: str) -> None:
    result = classify(number)
    assert result.tier == tier
    if rank + 1 < len(RANKED):
        cheaper = classify(RANKED[rank + 1][0])
        assert result.score > cheaper.score, (number, RANKED[rank + 1][0])
        assert tier_rank(result.tier) >= tier_rank(cheaper.tier)


def test_the_issue_examples() -> None:
    """Zeros are not eights, a stray digit breaks a run."""
    assert classify("4008888888").tier == "premium"
    assert classify("4000000001").tier != "premium"
    assert classify("4008888889").tier != "premium"
    assert classify("4001238888").score > classify("4001000001").score


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
        score=reference_score("8888888"),
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


def reference_score(suffix: str) -> int:
    """The score as docs/domain.md states it, computed plainly."""
    weight = RULES["digit_weight_percent"]
    score = 0
    groups = [(digit, len(list(run))) for digit, run in itertools.groupby(suffix)]
    for i, (digit, length) in enumerate(groups):
        if length >= 2:
            points = RULES["run_points"][str(length)] * weight[digit]
            if i == len(groups) - 1:
                points = points * RULES["ending_run_percent"] // 100
            score += points // 100
    steps = [int(b) - int(a) for a, b in itertools.pairwise(suffix)]
    for step, same in itertools.groupby(steps):
        length = len(list(same)) + 1
        if step in (1, -1) and length >= 3:
            score += RULES["straight_points"][str(length)]
    tags = reference_tags(suffix)
    for tag, points in RULES["pattern_points"].items():
        if tag in tags and not (tag == "mirror" and "palindrome" in tags):
            score += points
    score += sum(c in LUCKY_DIGITS for c in suffix) * RULES["lucky_digit_points"]
    score += suffix.count("4") * RULES["four_points"]
    return int(score)


@given(numbers)
@example("4008888888")
@example("4001234321")
@example("4009876788")
@example("4001232345")
@example("4005556777")
def test_score_matches_the_documented_definition(number: str) -> None:
    result = classify(number)
    assert result.score == reference_score(number[3:])
    assert result.tier == tier_for_score(result.score)


def test_score_matches_the_reference_on_a_large_random_sample() -> None:
    rng = random.Random(400)
    for _ in range(20_000):
        suffix = f"{rng.randrange(10**7):07d}"
        assert classify_suffix(suffix).score == reference_score(suffix), suffix


@given(suffixes.filter(lambda s: "4" in s))
@example("4444444")
@example("8888884")
def test_a_four_never_reaches_the_top_tier(suffix: str) -> None:
    assert tier_rank(classify_suffix(suffix).tier) < tier_rank("premium")


@given(suffixes.filter(lambda s: "4" in s), st.sampled_from(PLAIN_DIGITS))
@example("8888884", "0")
@example("1231444", "7")
@example("6666444", "0")
def test_replacing_the_fours_never_lowers_the_price(suffix: str, replacement: str) -> None:
    # Replacing every 4 with a digit not otherwise present keeps which digits
    # are equal, so the runs, pairs and mirrors stay; the premise rules out the
    # rare case where a 4 was part of a straight (3 digits or more score) or of
    # 1314. The tags alone do not rule out the straight: 1145678 and 1105678
    # are both abcd_up, but the 4 made a straight of 5 of what is then one of 4.
    assume(replacement not in suffix)
    assume(not any(straight in suffix for straight in ("234", "345", "456", "432", "543", "654")))
    without_four = suffix.replace("4", replacement)
    before = classify_suffix(suffix)
    after = classify_suffix(without_four)
    assume(set(before.tags) - FOUR_TAGS <= set(after.tags))
    assert after.has_four is False
    assert before.score < after.score
    assert tier_rank(before.tier) <= tier_rank(after.tier)
    assert before.min_monthly_spend_fen <= after.min_monthly_spend_fen


@given(suffixes, st.integers(0, 6))
def test_a_stray_digit_breaks_a_run(suffix: str, position: int) -> None:
    # The same digit seven times is worth more than any number with one other digit.
    digit = suffix[0]
    full = classify_suffix(digit * 7)
    stray = digit * position + suffix[position] + digit * (6 - position)
    assume(stray != digit * 7)
    assert classify_suffix(stray).score < full.score


@pytest.mark.parametrize(("better", "worse"), [("8", "6"), ("8", "9"), ("6", "0"), ("9", "0"), ("0", "4")])
@pytest.mark.parametrize("shape", ["aaaaaaa", "bbbaaaa", "abaaaaa", "bcdaaab", "aabbcdd"])
def test_eights_weigh_more_than_sixes_and_nines_and_these_more_than_zeros(
    better: str, worse: str, shape: str
) -> None:
    others = iter(d for d in "1237" if d not in (better, worse))
    filler = {"b": next(others), "c": next(others), "d": next(others)}
    make = lambda a: "".join(a if c == "a" else filler[c] for c in shape)  # noqa: E731
    assert classify_suffix(make(better)).score > classify_suffix(make(worse)).score


@given(st.integers(-200, 3000), st.integers(0, 500))
def test_a_higher_score_never_gets_a_cheaper_tier(score: int, more: int) -> None:
    assert tier_rank(tier_for_score(score)) <= tier_rank(tier_for_score(score + more))


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


def test_every_tier_is_reachable() -> None:
    reached = {
        classify(n).tier
        for n in ["4001340745", "4001357902", "4001122335", "4000777770", "4008888884", "4008888888"]
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
        ({"tier_min_score": {"standard": 0}}, "tier_min_score"),
        ({"tier_min_score": {"standard": 0, "bronze": 5, "silver": 5, "gold": 9, "premium": 10}}, "rise"),
        ({"lucky_digits": "6a"}, "lucky_digits"),
        ({"lucky_groups": ["13145"]}, "lucky_groups"),
        ({"digit_weight_percent": {"8": 100}}, "digit_weight_percent"),
        ({"run_points": {"2": 1, "3": 1, "4": 2, "5": 3, "6": 4, "7": 5}}, "run_points.3"),
        ({"straight_points": {"3": 1}}, "straight_points"),
        ({"pattern_points": {"aabb": 1}}, "pattern_points"),
        ({"four_points": 5}, "four_points"),
        ({"four_points": True}, "four_points"),
        ({"ending_run_percent": 50}, "ending_run_percent"),
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
