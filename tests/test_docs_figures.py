"""Every table of measured figures in the README and docs names the committed results file it
comes from (benchmarks/results/, written by a script in benchmarks/), in its own section, and
every results file the docs name is in the repository."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
RESULTS = re.compile(r"benchmarks/results/[\w.-]+\.(?:json|md|png)")
FIGURE = re.compile(r"\d\.\d|\d ?%")
FILE_SIZE = re.compile(r"[\d.]+ MB")  # (download sizes, the model registry's, not measured)


def tables(text: str):
    """(first line number, the table's text, its section's text up to the table) of each
    markdown table."""
    lines = text.split("\n")
    heading, i = 0, 0
    while i < len(lines):
        if lines[i].startswith("#"):
            heading = i
        if lines[i].startswith("|") and i + 1 < len(lines) and re.fullmatch(
                r"\|[-| :]+\|", lines[i + 1]):
            start = i
            while i < len(lines) and lines[i].startswith("|"):
                i += 1
            yield start + 1, "\n".join(lines[start:i]), "\n".join(lines[heading:i])
            continue
        i += 1


@pytest.mark.parametrize("doc", DOCS, ids=lambda path: path.name)
def test_each_table_of_figures_names_its_results_file(doc):
    unsourced = [line for line, table, section in tables(doc.read_text())
                 if FIGURE.search(FILE_SIZE.sub("", table.split("\n", 2)[-1]))
                 and not RESULTS.search(section)]
    assert not unsourced, f"{doc.name}: tables at lines {unsourced} name no results file"


@pytest.mark.parametrize("doc", DOCS, ids=lambda path: path.name)
def test_the_results_files_named_exist(doc):
    missing = sorted({name for name in RESULTS.findall(doc.read_text())
                      if not (REPO / name).is_file()})
    assert not missing, f"{doc.name} names results files that are not in the repository: {missing}"
