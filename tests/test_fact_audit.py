"""The fact audit (docs/fact_audit/): one table per lesson, every row with a source and a verdict."""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
AUDIT = ROOT / "docs" / "fact_audit"
LESSONS = sorted(p for p in (ROOT / "course").glob("[0-9][0-9]_*.ipynb"))


def rows(path: Path) -> list[list[str]]:
    """The body rows of the markdown table(s) in an audit file, split into cells."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("|") or re.match(r"^\|\s*-", line) or line.lower().startswith("| claim"):
            continue
        # a "|" inside `code` or escaped as \| is part of a cell, not a border
        masked = re.sub(r"`[^`]*`", lambda m: "x" * len(m.group()), line.replace("\\|", "xx"))
        borders = [i for i, ch in enumerate(masked) if ch == "|"]
        cells = [line[a + 1:b].strip() for a, b in zip(borders, borders[1:])]
        out.append(cells)
    return out


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda p: p.stem)
def test_every_lesson_has_an_audit_table(lesson):
    path = AUDIT / f"{lesson.stem[:2]}.md"
    assert path.is_file(), f"{lesson.name} has no fact audit ({path.relative_to(ROOT)})"
    table = rows(path)
    assert len(table) >= 8, f"{path.name}: only {len(table)} audited claims"
    for cells in table:
        assert len(cells) >= 4, f"{path.name}: a row without claim, cell, source and verdict: {cells}"
        claim, _, source, verdict = cells[:4]
        assert claim and source, f"{path.name}: a claim without its source: {cells}"
        assert verdict and not re.match(r"\W*(to |todo|unchecked|unknown|\?)", verdict, re.IGNORECASE), \
            f"{path.name}: a claim still unchecked: {cells}"


def test_the_index_lists_every_audit():
    index = (AUDIT / "README.md").read_text(encoding="utf-8")
    for path in AUDIT.glob("*.md"):
        if path.name != "README.md":
            assert f"({path.name})" in index, f"docs/fact_audit/README.md does not link {path.name}"
