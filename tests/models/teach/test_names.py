"""Class names: 2-6 of them, trimmed, printable, 1-32 characters, unique ignoring case."""

from __future__ import annotations

import re

import pytest

from models.teach.names import PATTERN, BadNames, check_names


def test_good_names_come_back_trimmed() -> None:
    assert check_names([" mug ", "pen", "hand ✋"]) == ["mug", "pen", "hand ✋"]


@pytest.mark.parametrize(
    "names",
    [["only"], ["a", "b", "c", "d", "e", "f", "g"], ["mug", "  "], ["mug", "x" * 33], ["mug", "MUG"],
     ["mug", "pe\x00n"], ["mug", "pen\u202e"], ["mug", "\ud800"], ["mug", 3], []],
)
def test_bad_names_are_refused(names: list[object]) -> None:
    with pytest.raises(BadNames):
        check_names(names)


def test_the_message_never_echoes_a_name() -> None:
    with pytest.raises(BadNames) as caught:
        check_names(["<script>", "<SCRIPT>"])
    assert "script" not in str(caught.value).lower()


def test_the_schema_pattern_agrees_with_the_rules() -> None:
    for name in ("mug", "hand ✋", "👨‍👩‍👧", " a "):
        assert re.fullmatch(PATTERN, name) and check_names([name, "other"])
    for name in ("", "   ", "a\x00", "\x85", "a\u202eb", "a\u2028b"):
        assert not re.fullmatch(PATTERN, name)
        with pytest.raises(BadNames):
            check_names([name, "other"])
