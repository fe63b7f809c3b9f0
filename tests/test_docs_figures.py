"""Every measured figure the docs quote is in a benchmark's results file.

Benchmarks write what they print to ``benchmarks/results/*.json``; docs tables
are rendered from those files (``.. results-table::``). Prose may quote a
figure from them, rounded or not, and nothing else: a decimal with two or more
places in the docs' prose (outside literal text, code and math) must equal a
number printed in some results table, rounded to the places the prose gives.
Settings written as code (``alpha=0.01``) are literals and are not figures.
"""

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
DOCS = sorted((ROOT / "docs").glob("*.rst")) + sorted((ROOT / "docs" / "user_guide").glob("*.rst")) + [
    ROOT / "README.md"]
FIGURE = re.compile(r"(?<![\w.])-?\d+\.\d{2,}(?![\w.])")
NUMBER = re.compile(r"-?\d+\.\d+(?:e-?\d+)?")

#: Decimals in the prose that are not measurements, with the reason: each is
#: allowed on its page only.
NOT_MEASURED = {
    ("install.rst", "3.10"): "the oldest Python version skbnn supports",
    ("nuts.rst", "1.01"): "the R-hat threshold of Vehtari et al. (2021) that the checks use",
    ("vi.rst", "0.98"): "the correlation a test's problem is built with (a setting)",
}


def prose(text):
    """The text of an rst (or markdown) page without literal blocks, code
    blocks, directives' bodies, inline literals and math."""
    out, skip_indent = [], None
    lines = text.splitlines()
    for i, line in enumerate(lines):
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if skip_indent is not None:
            if not stripped or indent > skip_indent:
                continue
            skip_indent = None
        if stripped.startswith("```"):
            # a fenced markdown block: skip to its end
            skip_indent = -1 if skip_indent is None else None
        if stripped.startswith(".. ") or stripped.endswith("::"):
            # a directive or a literal block: its indented body is not prose
            skip_indent = indent
            if stripped.startswith(".. "):
                continue
        out.append(line)
    text = "\n".join(out)
    text = re.sub(r"```.*?```", " ", text, flags=re.S)
    text = re.sub(r"``.*?``", " ", text, flags=re.S)
    text = re.sub(r"`[^`]*`", " ", text)
    return text


def recorded_numbers():
    numbers = set()

    def walk(value):
        if isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)
        elif isinstance(value, str):
            numbers.update(float(m) for m in NUMBER.findall(value))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            numbers.add(float(value))

    for path in RESULTS.glob("*.json"):
        walk(json.loads(path.read_text()).get("tables", {}))
    return numbers


def test_prose_reader_skips_literals_and_blocks():
    text = ("A figure 0.123 here, ``alpha=0.456`` there.\n\n"
            ".. code-block:: text\n\n   0.789 | 0.111\n\nBack: 1.25 and :math:`0.333`.\n")
    assert FIGURE.findall(prose(text)) == ["0.123", "1.25"]


@pytest.mark.parametrize("page", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_docs_figures_come_from_results(page):
    numbers = recorded_numbers()
    missing = []
    for figure in FIGURE.findall(prose(page.read_text())):
        if (page.name, figure) in NOT_MEASURED:
            continue
        places = len(figure.split(".")[1])
        value = float(figure)
        if not any(abs(round(n, places) - value) < 10 ** -(places + 3) for n in numbers):
            missing.append(figure)
    assert not missing, (
        f"{page.name} quotes figures that no file in benchmarks/results/ holds: {missing}. "
        "Rerun the benchmark that measured them (it writes its results file) or drop them.")


def test_every_allowed_decimal_is_still_on_its_page():
    pages = {page.name: prose(page.read_text()) for page in DOCS}
    stale = [key for key in NOT_MEASURED if key[1] not in FIGURE.findall(pages.get(key[0], ""))]
    assert not stale, f"NOT_MEASURED lists decimals no page quotes any more: {stale}"
