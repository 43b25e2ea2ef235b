"""Size limits that keep one hostile file from exhausting memory: files on disk and unpacked archives.

Text extraction holds a file's bytes, its decoded text and its chunks in memory at once, so a
file over the limit is skipped with its size and the limit named, never read. The limit is
`SEMSEARCH_MAX_FILE_MB` (default 64 MB: far more text than any document; logs and dumps above it
are rarely worth searching); Word files are held to it once unpacked, so a zip bomb is refused
from its directory, before anything is decompressed.
"""

from __future__ import annotations

import os

from semsearch.errors import ConfigError

MAX_FILE_ENV = "SEMSEARCH_MAX_FILE_MB"
DEFAULT_MAX_FILE_MB = 64
_MB = 1024 * 1024


def max_file_bytes() -> int:
    """The largest file (or unpacked Word file) to extract, in bytes, from `SEMSEARCH_MAX_FILE_MB`."""
    raw = os.environ.get(MAX_FILE_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_FILE_MB * _MB
    try:
        megabytes = float(raw)
    except ValueError:
        megabytes = -1.0
    if megabytes <= 0:
        raise ConfigError(f"{MAX_FILE_ENV}={raw!r} is not a size — give megabytes, e.g. {MAX_FILE_ENV}=200")
    return int(megabytes * _MB)


def too_large(size: int, limit: int, what: str = "too large") -> str:
    """The reason shown for a file over the limit: "too large (2048 MB > 64 MB limit) — ..."."""
    return (f"{what} ({_megabytes(size)} MB > {_megabytes(limit)} MB limit) — set {MAX_FILE_ENV} "
            "higher to index it")


def _megabytes(size: int) -> str:
    value = size / _MB
    return f"{value:.0f}" if value >= 10 else f"{value:.1f}"
