"""Characters that change how text reads without being seen.

Bidirectional embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069)
reorder what follows them: ``inv\\u202eFDP.exe`` displays as ``invexe.PDF``.
Directional marks and zero-width characters (U+200B-U+200F, U+2060-U+2064,
U+FEFF, U+180E, U+061C) are invisible, so two names that look the same can
differ. Neither has a place in a company's or a person's name, an address or a
file name, where an operator must read exactly what was sent.
"""

from __future__ import annotations

import re
from typing import Final

_HIDDEN: Final = re.compile("[\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")

MESSAGE: Final = (
    "Remove the invisible formatting characters (bidirectional overrides and isolates, "
    "directional marks, zero-width characters): they change how the text reads."
)


def has_hidden_characters(text: str) -> bool:
    return _HIDDEN.search(text) is not None
