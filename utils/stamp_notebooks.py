"""Write each notebook's launch header: an "Open in Colab" badge and the Colab install cell.

    python utils/stamp_notebooks.py course/*.ipynb solutions/*/*.ipynb

Both cells are generated from slmcourse.launch (where the repository address is written once) and
tagged `launch-badge` / `colab-install`, so running this again updates them in place. A notebook
whose header is already current is left untouched (its outputs stay valid).
"""
from __future__ import annotations

import sys
from pathlib import Path

import nbformat

from slmcourse.launch import ROOT, colab_badge, colab_cell_source


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


def main(paths: list[str]) -> int:
    for name in paths:
        print(("stamped   " if stamp(Path(name)) else "unchanged ") + name)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
