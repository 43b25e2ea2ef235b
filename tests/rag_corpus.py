"""A small corpus with many short chunks per document, for context assembly and the RAG integrations.

Indexed with a 40-token chunk budget so each document has several adjacent chunks (those of the
flat-tire guide overlap: each repeats the short last sentence of the one before);
every text is short, so embedding the whole corpus through the test server takes a few seconds.
"""

from __future__ import annotations

from pathlib import Path

from semsearch import Index

CHUNK_TOKENS = 40

FILES = {
    "cycling/flat-tire.md": """# Fixing a flat tire

Remove the wheel from the frame and let out any air left in the tube. Keep the nuts safe.

Work two tire levers under the bead and pull one side of the tire off the rim. Go slowly.

Take out the inner tube and run your fingers around the inside of the tire to find the thorn. Remove it.

Pump a little air into the tube and listen for the hiss to locate the hole. Mark the spot.

Roughen the area with sandpaper, spread a thin layer of glue and wait until it turns dull. Do not rush.

Press the patch on firmly, refit the tube and the tire, and pump it to the pressure on the sidewall.
""",
    "tea/green-tea.md": """# Green tea

Green tea leaves are heated soon after picking to stop oxidation, which keeps them green.

In China the leaves are usually pan-fired in a wok, which gives a toasty, nutty taste.

In Japan the leaves are steamed instead, which keeps a grassy, marine flavour.

Brew green tea with water around eighty degrees for two minutes; boiling water makes it bitter.
""",
    "cooking/hongshao-rou.md": """# 红烧肉

五花肉切成三厘米见方的块，冷水下锅焯水，撇去浮沫后捞出沥干。

锅里放少许油和冰糖，小火慢慢炒到糖色变成枣红色并冒起小泡。

倒入肉块翻炒上色，加入生抽、老抽、料酒、葱姜和八角。

加开水没过肉，大火烧开后转小火炖一个小时，最后大火收汁。
""",
    "copies/flat-tire-copy.md": None,  # an exact copy of cycling/flat-tire.md
}


def write_corpus(root: Path) -> Path:
    for relpath, text in FILES.items():
        target = root / relpath
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text if text is not None else FILES["cycling/flat-tire.md"], encoding="utf-8")
    return root


def build_index(directory: Path, ollama_url: str) -> tuple[Index, Path]:
    """(an open Index over the corpus, the corpus folder)."""
    corpus = write_corpus(directory / "corpus")
    index = Index.open(directory / "idx", ollama_host=ollama_url, chunk_tokens=CHUNK_TOKENS)
    report = index.index([corpus])
    assert report.files_failed == 0 and report.files_added == len(FILES), report
    return index, corpus
