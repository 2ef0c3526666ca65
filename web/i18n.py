"""The console's languages: gettext catalogues kept as ``.po`` files.

``web/locale/<lang>/LC_MESSAGES/messages.po`` is the only form in the
repository: the catalogues are compiled in memory when the console starts (a
few milliseconds), so there is no binary ``.mo`` to forget to rebuild after a
translator's change, and nothing generated in git. Messages are written in
English in the templates and code (the msgid); Simplified Chinese is the
default language, English the other.

Extract new strings with ``make messages`` (pybabel extract + update).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
LANGUAGES: dict[str, str] = {"zh_CN": "简体中文", "en": "English"}
HTML_LANG = {"zh_CN": "zh-CN", "en": "en"}


@dataclass(frozen=True)
class Language:
    code: str
    html_lang: str
    translations: Translations

    def gettext(self, message: str) -> str:
        return self.translations.gettext(message)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return self.translations.ngettext(singular, plural, n)


def N_(message: str) -> str:
    """Marks a message for extraction; it is translated where it is shown."""
    return message


def po_path(code: str) -> Path:
    return LOCALE_DIR / code / "LC_MESSAGES" / "messages.po"


@lru_cache(maxsize=len(LANGUAGES))
def language(code: str) -> Language:
    """The compiled catalogue of ``code`` (one of LANGUAGES)."""
    with po_path(code).open("rb") as fh:
        catalog = read_po(fh, locale=code)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Language(code, HTML_LANG[code], Translations(buffer))


def pick(requested: str | None, default: str) -> str:
    return requested if requested in LANGUAGES else default
