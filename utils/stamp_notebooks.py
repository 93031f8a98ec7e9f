"""Write each notebook's launch header (an "Open in Colab" badge and the Colab install cell) and the
README's launch badges and syllabus table.

    python utils/stamp_notebooks.py course/*.ipynb      # notebooks given on the command line
    python utils/stamp_notebooks.py --readme            # README.md's generated sections

Both cells are generated from slmcourse.launch (where the repository address is written once) and
tagged `launch-badge` / `colab-install`, so running this again updates them in place. A notebook
whose header is already current is left untouched (its outputs stay valid).
"""
from __future__ import annotations

import sys
from pathlib import Path

import nbformat

import re

from slmcourse.launch import ROOT, binder_badge, colab_badge, colab_cell_source, syllabus_markdown


def stamp(path: Path) -> bool:
    """Insert or refresh the header of one notebook; returns True if the file changed."""
    nb = nbformat.read(path, as_version=4)
    rel = path.resolve().relative_to(ROOT).as_posix()
    badge_text = colab_badge(rel)
    install_text = colab_cell_source()
    cells = nb.cells
    tagged = {tag: i for i, c in enumerate(cells) for tag in c.get("metadata", {}).get("tags", [])}
    changed = False
    if "launch-badge" in tagged:
        cell = cells[tagged["launch-badge"]]
        if cell.source != badge_text:
            cell.source, changed = badge_text, True
    else:
        cells.insert(0, nbformat.v4.new_markdown_cell(badge_text, metadata={"tags": ["launch-badge"]}))
        changed = True
    tagged = {tag: i for i, c in enumerate(cells) for tag in c.get("metadata", {}).get("tags", [])}
    if "colab-install" in tagged:
        cell = cells[tagged["colab-install"]]
        if cell.source != install_text:
            cell.source, changed = install_text, True
    else:
        # right after the title cell that follows the badge
        position = tagged["launch-badge"] + (2 if len(cells) > 1 and cells[1].cell_type == "markdown" else 1)
        cells.insert(position, nbformat.v4.new_code_cell(install_text, metadata={"tags": ["colab-install"]}))
        changed = True
    if changed:
        nbformat.write(nb, path)
    return changed


def readme_sections() -> dict[str, str]:
    return {"badges": binder_badge() + " " + colab_badge("course/00_setup.ipynb"), "syllabus": syllabus_markdown()}


def stamp_readme(path: Path = ROOT / "README.md") -> bool:
    """Refresh the text between <!-- NAME:start --> and <!-- NAME:end --> for each generated section."""
    text = original = path.read_text()
    for name, body in readme_sections().items():
        pattern = re.compile(rf"(<!-- {name}:start -->\n).*?(<!-- {name}:end -->)", re.S)
        text = pattern.sub(lambda m: m.group(1) + body + "\n" + m.group(2), text)
    if text != original:
        path.write_text(text)
    return text != original


def main(paths: list[str]) -> int:
    if "--readme" in paths:
        paths = [p for p in paths if p != "--readme"]
        print(("stamped   " if stamp_readme() else "unchanged ") + "README.md")
    for name in paths:
        print(("stamped   " if stamp(Path(name)) else "unchanged ") + name)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
