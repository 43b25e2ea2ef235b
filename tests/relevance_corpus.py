"""Notes where only a few passages answer each question: sourdough, gardening and two on bicycle tyres.

For the relative score threshold of `context` (a question about bicycle tyres must not fill its
budget with sourdough). Each paragraph is one chunk at CHUNK_TOKENS; QUESTIONS maps a question to
the passages that answer it: the two tyre passages are the only ones about bicycles; the
sourdough and tomato questions also have passages on their topic that do not answer them
(benchmarks/context_threshold.py measures all four).
"""

from __future__ import annotations

from pathlib import Path

CHUNK_TOKENS = 60

FILES = {
    "cycling/tyre-pressure.md": "Road bicycle tyres are pumped to about 80 to 100 psi, wider gravel and "
                                "mountain bike tyres to 25 to 50 psi; check the tyre pressure every week.\n",
    "cycling/punctures.md": "A punctured bicycle tyre is fixed by taking out the inner tube, finding the hole "
                            "and gluing a patch over it; tubeless tyres seal small punctures themselves.\n",
    "kitchen/sourdough.md": """# Sourdough notes

Feed the starter twice a day with equal weights of flour and water, and keep it at room temperature.

A dough at 75 percent hydration is sticky; wet your hands before folding it.

Do four sets of stretch and folds, thirty minutes apart, during the first two hours of bulk fermentation.

Shape the loaf gently to keep the gas, then proof it overnight in the fridge in a floured basket.

Bake in a preheated Dutch oven at 250 degrees, twenty minutes with the lid on and twenty without.

Score the top with a razor blade just before baking so the loaf opens where you want it to.
""",
    "garden/vegetables.md": """# Vegetable garden

Sow tomatoes indoors in March and plant them out after the last frost, deep enough to bury the stem.

Water the beds early in the morning so the leaves dry before evening and mildew stays away.

Mulch with straw or compost to keep the soil moist and the weeds down through the summer.

Rotate the crops each year: potatoes and tomatoes should not grow in the same bed twice in a row.

Pinch out the side shoots of cordon tomatoes every week so the plant puts its strength into fruit.

Slugs eat young lettuce at night; beer traps and copper tape keep most of them off.
""",
}

TYRE_FILES = ("tyre-pressure.md", "punctures.md")  # the only passages about bicycle tyres
# question -> (the file of its topic, words that start each passage answering it); the other
# passages of that file are on its topic without answering it, the rest are unrelated.
QUESTIONS = {
    "How do I look after my bicycle tyres: pressure and punctures?": ("cycling", ("Road bicycle", "A punctured")),
    "bicycle tyre pressure punctures": ("cycling", ("Road bicycle", "A punctured")),
    "How often should I feed a sourdough starter?": ("sourdough.md", ("# Sourdough notes",)),
    "When do I plant tomatoes outside?": ("vegetables.md", ("# Vegetable garden",)),
}


def write_corpus(root: Path) -> Path:
    for relpath, text in FILES.items():
        target = root / relpath
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    return root
