"""Untrusted text (catalogs, pages, responses, injections) made harmless to show.

One definition of the characters that can hide, reorder or restyle what a reader sees,
shared by the terminal views, the reports and the JSON output:

- terminal escape sequences (ANSI CSI, OSC such as hyperlinks and window titles);
- C0 and C1 control characters (but newline and tab), NUL and DEL;
- bidirectional overrides, embeddings, isolates and marks (U+202A-E, U+2066-9, U+200E/F,
  U+061C), which can make ``evil.exe`` read as ``exe.live``;
- zero-width and invisible characters (U+200B-D, U+2060-4, U+FEFF) and the Unicode line and
  paragraph separators (U+2028/9), which break lines where no newline is seen;
- Unicode tag characters (U+E0000-E007F), invisible twins of ASCII that a model reads: never
  removed from what a person sees, but written out (``⟦hidden: ...⟧``, :func:`shown`), and
  in JSON written as escapes.
"""

from __future__ import annotations

import re

ESCAPE_SEQUENCES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-_]")
_CONTROLS = "\x00-\x08\x0b-\x1f\x7f-\x9f"  # C0 and C1 controls, NUL and DEL; not newline or tab
# what a catalog's documents lose when they are read (their text is otherwise kept as written)
CONTROL_CHARS = re.compile(f"[{_CONTROLS}]")
# what is removed from text shown to a person (newline and tab are kept)
UNSAFE_CHARS = re.compile(
    f"[{_CONTROLS}\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")


_TAG_RUN = re.compile("[\U000e0000-\U000e007f]+")  # Unicode tag characters: invisible, read by models
# what JSON output writes as \u escapes (a tag character as its surrogate pair): the data decodes the same
_JSON_ESCAPED = re.compile(f"{UNSAFE_CHARS.pattern}|[\U000e0000-\U000e007f]")


def reveal_hidden(text: str) -> str:
    """``text`` with each run of Unicode tag characters (the invisible twins of ASCII, a way to
    hide an instruction from a person but not from a model) written out: ``⟦hidden: ...⟧``."""
    def spell(m: re.Match[str]) -> str:
        ascii_text = "".join(chr(ord(ch) - 0xE0000) for ch in m.group(0) if 0xE0020 <= ord(ch) <= 0xE007E)
        return f"⟦hidden: {ascii_text}⟧"

    return _TAG_RUN.sub(spell, text)


def shown(text: str) -> str:
    """Untrusted text as a person may see it (a terminal, a report): hidden tag characters
    written out (:func:`reveal_hidden`), every other unsafe character removed."""
    return strip_unsafe(reveal_hidden(text))


def strip_unsafe(text: str, replacement: str = "") -> str:
    """``text`` without escape sequences and with every unsafe character replaced."""
    return UNSAFE_CHARS.sub(replacement, ESCAPE_SEQUENCES.sub("", text))


def escape_unsafe_json(encoded: str) -> str:
    """JSON text (as ``json.dumps(..., ensure_ascii=False)`` writes it) with every unsafe
    character and every Unicode tag character written as a ``\\uXXXX`` escape (a tag
    character, beyond U+FFFF, as its surrogate pair): the same data, nothing raw or invisible
    on a terminal. Outside strings JSON has none of these characters, so the replacement is exact."""
    return _JSON_ESCAPED.sub(lambda m: _json_escape(ord(m.group(0))), encoded)


def _json_escape(code: int) -> str:
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def figure_label(text: object, width: int = 40) -> str:
    """A label matplotlib draws literally: one line of at most ``width`` characters, without
    control or bidi characters (it would warn about them on stderr, raw), with '$' escaped so it
    is never read as math."""
    line = " ".join(shown(str(text)).split())
    line = line if len(line) <= width else line[: width - 1] + "…"
    return line.replace("$", r"\$")
