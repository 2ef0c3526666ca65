"""Every string the console shows has a translation in both catalogues, with
the same placeholders, so no page shows a message in the wrong language."""

from __future__ import annotations

import re
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from web import i18n

WEB = Path(i18n.__file__).resolve().parent
_PLACEHOLDER = re.compile(r"%\(\w+\)[sd]")


def _source_messages() -> set[str | tuple[str, ...]]:
    method_map = [("**.py", "python"), ("templates/**.html", "jinja2")]
    options = {"templates/**.html": {"extensions": "jinja2.ext.i18n"}}
    keywords = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None}
    found: set[str | tuple[str, ...]] = set()
    for _filename, _line, message, _comments, _context in extract_from_dir(
        str(WEB), method_map, options, keywords=keywords
    ):
        found.add(message)
    return found


def test_every_message_of_the_console_is_translated_in_both_languages() -> None:
    messages = _source_messages()
    assert len(messages) > 200  # the extraction really read the templates and the code
    for code in i18n.LANGUAGES:
        with i18n.po_path(code).open("rb") as fh:
            catalog = read_po(fh, locale=code)
        for message in messages:
            msgid = message[0] if isinstance(message, tuple) else message
            entry = catalog.get(msgid)
            assert entry is not None, f"{code}: no entry for {msgid!r}"
            strings = entry.string if isinstance(entry.string, tuple) else (entry.string,)
            assert all(strings), f"{code}: {msgid!r} is not translated"
            for translated in strings:
                assert set(_PLACEHOLDER.findall(str(translated))) == set(_PLACEHOLDER.findall(msgid)), (
                    f"{code}: {msgid!r} -> {translated!r} changes the placeholders"
                )


def test_chinese_is_the_default_and_really_translates() -> None:
    assert i18n.pick(None, "zh_CN") == "zh_CN"
    assert i18n.pick("fr", "zh_CN") == "zh_CN"
    assert i18n.language("zh_CN").gettext("Review queue") == "审核队列"
    assert i18n.language("en").gettext("Review queue") == "Review queue"
