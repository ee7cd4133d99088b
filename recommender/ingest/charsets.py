"""Bytes to text, the same way for every text input: byte-order marks, declared
charsets, UTF-8 with a few bad bytes, and documents in another encoding.

:func:`decode` tries, in this order:

1. a byte-order mark: UTF-32 LE/BE, UTF-8, UTF-16 LE/BE (the mark is dropped);
2. a declared UTF-16 or UTF-32 charset, when the bytes look like it (a NUL
   among the first four: ``<`` is ``3C 00`` in UTF-16);
3. UTF-8, when the whole document is valid UTF-8 (a document that decodes as
   UTF-8 is UTF-8, whatever a server's default charset says);
4. the declared charset: the HTTP ``charset`` parameter, then the document's
   own (``<?xml ... encoding=?>``, ``<meta charset>``), when it decodes;
5. UTF-8 with damage: when the valid multi-byte UTF-8 characters outnumber
   the invalid sequences at least two to one, the document is UTF-8 with a few
   bad bytes (a cut multi-byte character, a stray Latin-1 byte). Just those
   bytes become U+FFFD and where they were (line and column) is reported;
   the rest keeps its text. The same for a declared multi-byte charset
   (Shift_JIS, EUC-KR, ...) that is mostly valid;
6. otherwise the document is in another encoding: with ``detect`` the most
   plausible one by charset-normalizer (a Windows-1252 export, a Shift_JIS
   page without declaration), reported; without, :class:`NotTextError`.

Why two to one: a document in a legacy encoding read as UTF-8 yields few
valid multi-byte characters by accident (Shift_JIS and EUC-JP text about one
for every four invalid sequences, Latin-1 and Windows-1252 text none), while
UTF-8 with a handful of bad bytes has hundreds of valid ones for each.

Lines are counted at ``\\n`` (``\\r\\n`` is one line end); columns are
characters, 1-based. Standard library only, except the detection, which
imports charset-normalizer (the ``ingest`` extra) when it is needed.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

#: Byte-order marks, longest first (UTF-32 LE starts with UTF-16 LE's mark).
BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
#: How many bad spots a report lists by position.
MAX_LISTED = 10

_XML_DECLARATION = re.compile(
    rb"""^\s*<\?xml\b[^>]*?\bencoding\s*=\s*["']\s*([A-Za-z][\w.:-]*)\s*["']""", re.I
)
_META_CHARSET = re.compile(rb"""<meta\b[^>]*?\bcharset\s*=\s*["']?\s*([A-Za-z][\w.:-]*)""", re.I)
_WIDE = ("utf-16", "utf-32")
_WIDE_MARKUP = (
    (b"<\x00\x00\x00", "utf-32-le"),
    (b"\x00\x00\x00<", "utf-32-be"),
    (b"<\x00?\x00", "utf-16-le"),
    (b"\x00<\x00?", "utf-16-be"),
)


class NotTextError(ValueError):
    """The bytes are not UTF-8 (nor what was declared) and detection was not asked for.

    ``reason`` names the first invalid byte by line and column.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class BadSpot:
    """Bytes that did not decode: where (1-based line and column) and which."""

    line: int
    column: int
    data: bytes

    def __str__(self) -> str:
        shown = " ".join(f"0x{b:02x}" for b in self.data[:4])
        return f"line {self.line}, column {self.column} ({shown})"


@dataclass(frozen=True)
class Decoded:
    """Text decoded from bytes and how.

    ``encoding``: the codec used (Python's name). ``note``: what was not read as
    it is (bad bytes replaced, a wrong declaration, a detected encoding), with
    positions; ``None`` when nothing was. ``bad``: the first
    :data:`MAX_LISTED` spots replaced by U+FFFD; ``n_bad``: how many in all.
    """

    text: str
    encoding: str
    note: str | None = None
    bad: tuple[BadSpot, ...] = ()
    n_bad: int = 0


def codec_name(label: str | None) -> str | None:
    """Python's name for a charset label (``Shift_JIS`` → ``shift_jis``); None if unknown."""
    if not label:
        return None
    try:
        return codecs.lookup(label.strip()).name
    except LookupError:
        return None


def bom_codec(content: bytes) -> tuple[str, int] | None:
    """The codec a byte-order mark announces and the mark's length, or None."""
    for bom, name in BOMS:
        if content.startswith(bom):
            return name, len(bom)
    return None


def declared_in(content: bytes, markup: str | None) -> str | None:
    """The charset a document declares itself: ``markup`` ``"xml"`` reads the XML
    declaration, ``"html"`` the XML declaration or the first ``<meta charset>``
    (or ``http-equiv`` content type) in the first 64 KB. A document that starts
    with ``<`` in UTF-16 or UTF-32 without a byte-order mark declares that."""
    if markup is None:
        return None
    for start, wide in _WIDE_MARKUP:  # XML 1.0 appendix F: "<?" without a byte-order mark
        if content.startswith(start):
            return wide
    head = content[:65536]
    found = _XML_DECLARATION.match(head)
    if found is None and markup == "html":
        found = _META_CHARSET.search(head)
    return found.group(1).decode("ascii") if found else None


def with_utf8_declaration(content: bytes) -> bytes:
    """UTF-8 bytes whose XML declaration, if it names an encoding, names UTF-8."""
    found = _XML_DECLARATION.match(content[:1024])
    if found is None:
        return content
    start, end = found.span(1)
    return content[:start] + b"utf-8" + content[end:]


def _is_wide(codec: str | None) -> bool:
    return bool(codec) and codec.startswith(_WIDE)  # type: ignore[union-attr]


def decode(
    content: bytes,
    declared: str | None = None,
    *,
    markup: str | None = None,
    detect: bool = True,
) -> Decoded:
    """Decode a text document (see module docs for the order).

    ``declared``: the charset the transport gave (HTTP). ``markup``: where to
    look for the document's own declaration (see :func:`declared_in`).
    ``detect``: guess another encoding when the bytes are not UTF-8 nor what
    was declared; when False, :class:`NotTextError` is raised instead.
    """
    found = bom_codec(content)
    if found is not None:
        codec, skip = found
        return _decode_as(content[skip:], codec, "byte-order mark")
    labels = [label for label in (declared, declared_in(content, markup)) if label]
    names = [n for n in dict.fromkeys(codec_name(label) for label in labels) if n]
    unknown = [label for label in labels if codec_name(label) is None]
    wide = next((n for n in names if _is_wide(n)), None)
    if wide is not None and b"\x00" in content[:4]:
        if wide in ("utf-16", "utf-32"):  # no byte order given: a NUL first is big-endian
            wide += "-be" if content[:1] == b"\x00" else "-le"
        return _decode_as(content, wide, "declared charset")
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        others = [n for n in names if n not in ("utf-8", "ascii")]
        note = None
        if others and not text.isascii():
            note = f"declared charset {others[0]} does not fit: the document is valid UTF-8"
        return Decoded(text, "utf-8", note)
    legacy = [n for n in names if n != "utf-8" and not _is_wide(n)]
    for name in legacy:
        try:
            return Decoded(content.decode(name), name)
        except UnicodeDecodeError:
            continue
    as_utf8 = content.decode("utf-8", "replace")
    n_bad = as_utf8.count("\ufffd") - content.count(b"\xef\xbf\xbd")
    if _mostly_valid(as_utf8, n_bad):
        return _repaired(content, "utf-8", as_utf8, n_bad, "")
    for name in legacy:
        text = content.decode(name, "replace")
        if _mostly_valid(text, text.count("\ufffd")):
            return _repaired(content, name, text, text.count("\ufffd"), f"declared {name}: ")
    first = _bad_spots(content, "utf-8", as_utf8, 1)[0]
    where = f"{n_bad:,} invalid sequence(s), the first at {first}"
    if legacy:
        where += f"; not {'/'.join(legacy)} as declared either"
    elif unknown:
        where += f"; unknown declared charset {unknown[0]!r}"
    if not detect:
        raise NotTextError(f"not UTF-8 text ({where})")
    guess = _detected(content)
    return Decoded(
        content.decode(guess, "replace"),
        guess,
        f"not valid UTF-8 ({where}); decoded as {guess} (detected)",
    )


def _mostly_valid(text: str, n_bad: int) -> bool:
    """At least two valid non-ASCII characters per invalid sequence (see module docs)."""
    valid = len(text) - len(text.encode("ascii", "ignore")) - n_bad
    return valid >= 1 and valid >= 2 * n_bad


def _decode_as(content: bytes, codec: str, why: str) -> Decoded:
    try:
        return Decoded(content.decode(codec), codec)
    except UnicodeDecodeError:
        text = content.decode(codec, "replace")
        return _repaired(content, codec, text, text.count("\ufffd"), f"{why} {codec}: ")


def _repaired(content: bytes, codec: str, text: str, n_bad: int, prefix: str) -> Decoded:
    spots = tuple(_bad_spots(content, codec, text, MAX_LISTED))
    listed = "; ".join(map(str, spots))
    more = f"; and {n_bad - len(spots):,} more" if n_bad > len(spots) else ""
    note = f"{prefix}{n_bad:,} invalid {codec} sequence(s) replaced by U+FFFD at {listed}{more}"
    return Decoded(text, codec, note, spots, n_bad)


def _bad_spots(content: bytes, codec: str, text: str, limit: int) -> list[BadSpot]:
    """The first ``limit`` undecodable spots, located in ``text`` (``content``
    decoded with ``errors="replace"``: one U+FFFD per spot)."""
    view = memoryview(content)
    spots: list[BadSpot] = []
    position = 0  # in content
    index = 0  # in text: where content[position:] begins
    while len(spots) < limit:
        try:
            str(view[position:], codec)
            break
        except UnicodeDecodeError as error:
            start, end = position + error.start, position + error.end
        index += len(str(view[position:start], codec))
        line = text.count("\n", 0, index) + 1
        column = index - (text.rfind("\n", 0, index) + 1) + 1
        spots.append(BadSpot(line, column, bytes(view[start:end])))
        index += 1  # the U+FFFD
        position = end
    return spots


def _detected(content: bytes) -> str:
    """The encoding charset-normalizer finds most plausible (Windows-1252 if none)."""
    import charset_normalizer

    best = charset_normalizer.from_bytes(content).best()
    found = codec_name(best.encoding) if best is not None else None
    return found or "cp1252"


def line_column(text: str, index: int) -> tuple[int, int]:
    """1-based line and column of ``text[index]``."""
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1
