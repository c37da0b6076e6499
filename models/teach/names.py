"""What a taught class may be called, and how many there may be: one rule for the API and the files.

A name is what a class typed ("mug", "pen", "hand ✋"): 1 to ``MAX_NAME`` characters after
trimming, none of them a control character, a line or paragraph separator or a direction
mark or override (which can make a name read otherwise than it is stored), and unique
among the session's classes ignoring case, so two cards can never read the same.
``PATTERN`` says as much of that as a regular expression can, for the API's schema. There are ``MIN_CLASSES`` to
``MAX_CLASSES`` of them.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

MIN_CLASSES = 2
MAX_CLASSES = 6
MAX_NAME = 32
FORBIDDEN = r"\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069"
PATTERN = rf"^[^{FORBIDDEN}]*[^{FORBIDDEN}\s][^{FORBIDDEN}]*$"
_FORBIDDEN = re.compile(f"[{FORBIDDEN}]")


class BadNames(ValueError):
    """The class names break a rule; the message says which, without echoing the names."""


def check_names(names: Sequence[object]) -> list[str]:
    """The names, trimmed, or ``BadNames``."""
    if not MIN_CLASSES <= len(names) <= MAX_CLASSES:
        raise BadNames(f"Give {MIN_CLASSES} to {MAX_CLASSES} classes, not {len(names)}.")
    cleaned = []
    for position, name in enumerate(names, 1):
        if not isinstance(name, str):
            raise BadNames(f"Class {position} is not a string.")
        text = name.strip()
        if not 1 <= len(text) <= MAX_NAME:
            raise BadNames(f"Class {position} must have 1 to {MAX_NAME} characters.")
        if _FORBIDDEN.search(text) or any(unicodedata.category(ch) == "Cs" for ch in text):
            raise BadNames(f"Class {position} holds characters that cannot be shown.")
        cleaned.append(text)
    if len({n.casefold() for n in cleaned}) != len(cleaned):
        raise BadNames("Two classes have the same name; give each its own.")
    return cleaned
