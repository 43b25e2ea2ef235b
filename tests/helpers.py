"""Shared test data: the demo corpus location and its example queries with their one right answer."""

from __future__ import annotations

from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "data"

# (query, relpath of the document that must rank first). Includes Chinese → English and
# English → Chinese queries; the README's quickstart uses the same ones.
EXAMPLE_QUERIES = [
    ("Rust 中 Send 和 Sync trait 的作用", "programming/rust-ownership.md"),
    ("invention of paper in China", "history/papermaking-and-printing.md"),
    ("types of Chinese tea", "tea/chinese-tea.md"),
    ("红烧肉怎么炒糖色", "cooking/hongshao-rou.md"),
    ("how to fix a flat bicycle tire", "cycling/bicycle-maintenance.txt"),
    ("用双筒望远镜能看到哪些星星", "astronomy/stargazing-beginners.html"),
]


def top_relpath(hits, root: Path) -> str | None:
    """The first hit's path relative to `root` (POSIX), or None without hits."""
    if not hits:
        return None
    return Path(hits[0].path).resolve().relative_to(root.resolve()).as_posix()
