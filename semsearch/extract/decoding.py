"""Bytes → str for text formats: BOMs, UTF-8, GB18030 (only when it reads as Chinese), newlines."""

from __future__ import annotations

import codecs
import re
from itertools import islice

from semsearch.errors import ExtractError

__all__ = ["BINARY", "UNDECODABLE", "check_not_binary", "decode", "looks_binary", "normalize_newlines"]

BINARY = "binary content"
UNDECODABLE = "not valid UTF-8, UTF-16 or GB18030 text"

_SNIFF_BYTES = 8192
_BOMS = (  # UTF-32 first: its little-endian BOM starts with the UTF-16 one
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_NON_ASCII = re.compile(r"[^\x00-\x7f]")
_CHINESE_SAMPLE = 4000  # non-ASCII characters looked at to judge a GB18030 decoding
_MIN_GB2312_SHARE = 0.9


def decode(data: bytes) -> str:
    """Decode file bytes to text with newlines normalised to "\\n".

    Tries a BOM (UTF-8, UTF-16 LE/BE, UTF-32 LE/BE; the BOM is dropped), then strict UTF-8, then
    strict GB18030 — accepted only when nearly all its non-ASCII characters are in GB2312 (common
    Chinese characters and punctuation), so Latin-1 or other single-byte text is refused instead
    of being turned into mojibake. Raises ExtractError("binary content") when the first 8 KiB of
    BOM-less data contain a NUL byte, and ExtractError("not valid UTF-8, UTF-16 or GB18030 text")
    when nothing fits.
    """
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return normalize_newlines(data[len(bom) :].decode(encoding))
            except UnicodeDecodeError as exc:
                raise ExtractError(UNDECODABLE) from exc
    check_not_binary(data)
    try:
        return normalize_newlines(data.decode("utf-8"))
    except UnicodeDecodeError:
        pass
    try:
        text = data.decode("gb18030")
    except UnicodeDecodeError as exc:
        raise ExtractError(BINARY if looks_binary(data) else UNDECODABLE) from exc
    if not _reads_as_chinese(text):
        raise ExtractError(BINARY if looks_binary(data) else UNDECODABLE)
    return normalize_newlines(text)


def check_not_binary(data: bytes) -> None:
    """Raise ExtractError("binary content") if the first 8 KiB contain a NUL byte."""
    if b"\x00" in data[:_SNIFF_BYTES]:
        raise ExtractError(BINARY)


# Control bytes no text format uses (tab, newlines, form feed and escape are left out).
_CONTROL_BYTES = bytes(set(range(32)) - {9, 10, 12, 13, 27})


def looks_binary(data: bytes) -> bool:
    """True for bytes that are not text in any encoding: a NUL anywhere, or more than one byte
    in ten of the first 8 KiB a control character (compressed, image and executable data)."""
    if b"\x00" in data:
        return True
    sample = data[:_SNIFF_BYTES]
    return bool(sample) and len(sample) - len(sample.translate(None, _CONTROL_BYTES)) > len(sample) // 10


def normalize_newlines(text: str) -> str:
    """CRLF and lone CR become LF: one line break stays one line break, so line numbers hold."""
    if "\r" not in text:
        return text
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _reads_as_chinese(text: str) -> bool:
    # Real GBK/GB18030 text is almost entirely GB2312 characters (two bytes, both >= 0xA1);
    # single-byte Western text that happens to decode pairs an accented letter with an ASCII
    # byte, which lands outside GB2312.
    sample = "".join(m.group() for m in islice(_NON_ASCII.finditer(text), _CHINESE_SAMPLE))
    if not sample:
        return True
    encoded = sample.encode("gb2312", errors="replace")
    unknown = encoded.count(b"?")
    return (len(sample) - unknown) >= _MIN_GB2312_SHARE * len(sample)
