"""Public ids: a prefix and 26 characters of time-ordered randomness (ULID layout).

Time-ordered so that ids sort roughly by creation, which keeps the primary-key
index appending at its end; 80 random bits so that ids cannot be guessed.
"""

from __future__ import annotations

import secrets
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case


def new_id(prefix: str) -> str:
    value = (int(time.time() * 1000) << 80) | secrets.randbits(80)
    chars = []
    for _ in range(26):
        value, digit = divmod(value, 32)
        chars.append(_ALPHABET[digit])
    return f"{prefix}_{''.join(reversed(chars))}"
