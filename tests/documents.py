"""Test documents written with the format libraries themselves: PDF (fpdf2, pypdf), DOCX (python-docx), notebooks."""

from __future__ import annotations

import io
import json
from pathlib import Path

# Three pages about different things, so a query can only be answered by one page.
PDF_PAGES = [
    "Lighthouse keeping\nThe keeper climbs the tower at dusk to light the lamp.\nOil lamps were trimmed every night.",
    "Ships and signals\nEach lighthouse flashes its own pattern so sailors know where they are.\n"
    "Fog horns sound when the light cannot be seen.",
    "Retirement of keepers\nAutomation replaced the last resident keepers in the late twentieth century.\n"
    "Many cottages became museums or holiday homes.",
]


def write_pdf(path: Path, pages: list[str] = PDF_PAGES, *, title: str | None = None,
              outline: bool = False) -> Path:
    """A PDF with one text page per item of `pages` (lines separated by newlines)."""
    from fpdf import FPDF

    pdf = FPDF()
    if title:
        pdf.set_title(title)
    for text in pages:
        pdf.add_page()
        pdf.set_font("helvetica", size=12)
        if outline:
            pdf.start_section(text.split("\n", 1)[0])
        pdf.multi_cell(0, 8, text)
    path.write_bytes(bytes(pdf.output()))
    return path


def write_encrypted_pdf(path: Path, *, user_password: str = "secret") -> Path:
    """A PDF that needs `user_password` to open (an empty one opens without asking)."""
    import pypdf

    write_pdf(path, ["A secret memo about the harbour budget."])
    writer = pypdf.PdfWriter(clone_from=pypdf.PdfReader(io.BytesIO(path.read_bytes())))
    writer.encrypt(user_password=user_password, owner_password="owner-" + user_password, algorithm="AES-128")
    encrypted = io.BytesIO()
    writer.write(encrypted)
    path.write_bytes(encrypted.getvalue())
    return path


def write_image_only_pdf(path: Path, pages: int = 2) -> Path:
    """A PDF whose pages carry drawings but no text layer, like a scan."""
    from fpdf import FPDF

    pdf = FPDF()
    for _ in range(pages):
        pdf.add_page()
        pdf.rect(20, 20, 100, 60, style="F")
    path.write_bytes(bytes(pdf.output()))
    return path


def write_docx(path: Path) -> Path:
    """A Word file with a title, nested headings, body paragraphs and a table."""
    import docx

    document = docx.Document()
    document.core_properties.title = "Harbour handbook"
    document.core_properties.author = "Port office"
    document.add_heading("Harbour handbook", 0)
    document.add_paragraph("This handbook explains how the small harbour works.")
    document.add_heading("Moorings", 1)
    document.add_paragraph("Visiting boats tie up on the north pontoon.")
    document.add_heading("Fees", 2)
    document.add_paragraph("Mooring fees are paid at the harbour office before noon.")
    table = document.add_table(rows=3, cols=2)
    for row, (length, fee) in enumerate([("Boat length", "Fee per night"), ("under 8 m", "12 euro"),
                                         ("8 to 12 m", "18 euro")]):
        table.cell(row, 0).text = length
        table.cell(row, 1).text = fee
    document.add_heading("Safety", 1)
    document.add_paragraph("Life jackets are required on the pontoons for children.")
    document.save(path)
    return path


def write_notebook(path: Path) -> Path:
    """An nbformat 4 notebook: markdown with headings, code, an empty cell, outputs that are not indexed."""
    cells = [
        {"cell_type": "markdown", "metadata": {}, "source": ["# Tide analysis\n", "We look at tide heights."]},
        {"cell_type": "code", "execution_count": 1, "metadata": {}, "source": ["import pandas as pd\n",
         "tides = pd.read_csv('tides.csv')"], "outputs": [{"output_type": "stream", "name": "stdout",
                                                         "text": ["OUTPUT NOT INDEXED\n"]}]},
        {"cell_type": "code", "execution_count": None, "metadata": {}, "source": [], "outputs": []},
        {"cell_type": "markdown", "metadata": {}, "source": "## Spring tides\n\nSpring tides follow the new moon."},
        {"cell_type": "code", "execution_count": 2, "metadata": {}, "outputs": [],
         "source": "\nspring = tides[tides.moon == 'new']\nspring.height.max()"},
    ]
    notebook = {"cells": cells, "metadata": {"kernelspec": {"name": "python3", "language": "python"}},
                "nbformat": 4, "nbformat_minor": 5}
    path.write_text(json.dumps(notebook, indent=1), encoding="utf-8")
    return path


FRONT_MATTER_MD = """---
title: Ferry timetable
tags: [ferry, timetable]
year: 2024
draft: false
updated: 2024-05-01
---

# Ferry timetable

The first ferry to the island leaves at seven in the morning.
"""

HTML_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Harbour webcam</title><script>var tracking = 1;</script></head>
<body><nav><a href="/">Home</a> <a href="/cams">All cameras</a></nav>
<main><h1>Harbour webcam</h1><p>The webcam shows the harbour entrance and refreshes every minute.</p></main>
<footer>Copyright the port office</footer></body></html>
"""


def write_mixed_folder(folder: Path) -> Path:
    """The acceptance folder: a 3-page PDF, a DOCX, an HTML page, a notebook, Markdown with front matter."""
    folder.mkdir(parents=True, exist_ok=True)
    write_pdf(folder / "lighthouses.pdf", title="Lighthouses")
    write_docx(folder / "handbook.docx")
    (folder / "webcam.html").write_text(HTML_PAGE, encoding="utf-8")
    write_notebook(folder / "tides.ipynb")
    (folder / "ferry.md").write_text(FRONT_MATTER_MD, encoding="utf-8")
    return folder
