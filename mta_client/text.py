r"""Text from people and from the city's server: checked, and safe to print.

Names, office names and the city's error messages are printed to terminals
and stored by the city. Control characters (``ESC``, ``CR``, the C1 range),
Unicode format characters (bidirectional overrides, zero-width marks), line
separators and lone surrogates are invisible or act on the terminal:

* :func:`hidden_characters` says whether a text holds any of them (the
  input checks refuse such text before anything is sent);
* :func:`safe` escapes them for terminal output (``\x1b``, ``\u202e``);
* :func:`safe_json` writes JSON whose strings hold none of them raw.

The zero-width joiner and non-joiner (U+200C, U+200D) are format characters
that Persian and Indic names and emoji need; they neither move the cursor nor
change the direction of text, so they are left alone.
"""

from __future__ import annotations

import json
from typing import Any
import unicodedata

__all__ = ["hidden_characters", "normalized", "safe", "safe_json"]

_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_JOINERS = frozenset({"\u200c", "\u200d"})


def _hidden(char: str) -> bool:
    return unicodedata.category(char) in _HIDDEN_CATEGORIES and char not in _JOINERS


def hidden_characters(text: str, *, allow: str = "") -> bool:
    r"""Whether ``text`` holds a control, format or separator character.

    Characters in ``allow`` (``"\n"``, say) do not count.
    """
    probe = text
    for char in allow:
        probe = probe.replace(char, "")
    if probe.isprintable():
        return False
    return any(_hidden(char) for char in probe)


def _escape(char: str) -> str:
    code = ord(char)
    if code <= 0xFF:  # noqa: PLR2004 - the \xNN range
        return f"\\x{code:02x}"
    if code <= 0xFFFF:  # noqa: PLR2004 - the \uNNNN range
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def safe(text: object, *, keep_newlines: bool = False) -> str:
    r"""Return ``text`` with every control or format character escaped.

    ``"\x1b[2J"`` becomes ``"\\x1b[2J"``: the terminal shows it instead of
    clearing the screen. With ``keep_newlines`` a ``"\n"`` stays a line
    break (for multi-line output); ``"\r"`` is escaped all the same.
    Anything that is not a string is formatted with ``str()`` first.
    """
    value = text if isinstance(text, str) else str(text)
    if value.isprintable():
        return value
    keep = "\n" if keep_newlines else ""
    return "".join(
        _escape(char) if char not in keep and _hidden(char) else char for char in value
    )


def _json_escape(char: str) -> str:
    code = ord(char)
    if code <= 0xFFFF:  # noqa: PLR2004 - one UTF-16 unit
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def safe_json(document: Any, **options: Any) -> str:
    r"""``json.dumps`` with non-ASCII text kept, but no hidden character raw.

    ``json`` already escapes the C0 controls; DEL, the C1 controls, format
    characters, line separators and lone surrogates are escaped here as
    ``\uNNNN``, so the output is the same JSON document and safe to print.
    """
    text = json.dumps(document, ensure_ascii=False, **options)
    if not hidden_characters(text, allow="\n"):
        return text
    # Outside strings there is only indentation; inside, json escaped "\n".
    return "".join(
        _json_escape(char) if char != "\n" and _hidden(char) else char for char in text
    )


def normalized(text: str) -> str:
    """Return ``text`` in NFC with its runs of whitespace made single spaces.

    This is how the client measures free text against the city's limits.
    """
    return " ".join(unicodedata.normalize("NFC", text).split())
