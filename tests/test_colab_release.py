"""The Colab cell installs a tagged release of the course, not the moving `main` branch (issue 19 point 8)."""
from __future__ import annotations

import re
from pathlib import Path

import slmcourse
from slmcourse import launch

ROOT = Path(__file__).resolve().parents[1]


def test_colab_installs_the_tagged_release_of_this_version():
    assert launch.RELEASE == f"v{slmcourse.__version__}"
    version = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M).group(1)
    assert version == slmcourse.__version__
    cell = launch.colab_cell_source()
    assert f"@{launch.RELEASE}'" in cell and "@main'" not in cell


def test_the_students_guide_names_the_release_and_how_to_submit():
    doc = (ROOT / "docs" / "students_submitting.md").read_text()
    assert "launch.RELEASE" in doc and "Download" in doc and "restore" in doc.lower()
