"""`make student-dist` (utils/student_dist.py): a student distribution without solutions/ or the grading tools.

Builds the distribution from this checkout's committed files into a temporary folder (a second or so) and
checks what students must and must not get.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "utils"))
import student_dist  # noqa: E402


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist") / "student-dist"
    report = student_dist.build(out)
    return out, report


def test_no_solutions_and_no_grading_tools(dist):
    out, report = dist
    assert not (out / "solutions").exists()
    for rel in ("utils/grade.py", "utils/sandbox.py", "nbgrader_config.py", "docs/instructors.md",
                "tests/test_grading.py"):
        assert not (out / rel).exists(), rel
    assert any(rel.startswith("solutions/") for rel in report["left_out"])


def test_students_get_the_course_and_the_release(dist):
    out, _ = dist
    for rel in ("README.md", "Makefile", "requirements.txt", "pyproject.toml", "utils/slmcourse/__init__.py",
                "course/00_setup.ipynb", "STUDENT_DISTRIBUTION.md"):
        assert (out / rel).is_file(), rel
    tracked = subprocess.run(["git", "ls-files", "assignments"], cwd=ROOT, capture_output=True, text=True).stdout.split()
    assert tracked and all((out / rel).is_file() for rel in tracked)


def test_nothing_leaks(dist):
    out, _ = dist
    assert student_dist.leaks(out) == []
    for nb_path in (out / "assignments").glob("*/*.ipynb"):
        for cell in json.loads(nb_path.read_text())["cells"]:
            text = "".join(cell["source"])
            assert "BEGIN HIDDEN TESTS" not in text and "BEGIN SOLUTION" not in text and "Model answer" not in text


def test_the_leak_check_catches_a_planted_model_answer(tmp_path):
    (tmp_path / "notes.md").write_text("*Model answer.* 42\n")
    (tmp_path / "ok.md").write_text("nothing to see\n")
    assert student_dist.leaks(tmp_path) == ["notes.md"]


def test_configuration_and_links_do_not_name_left_out_files(dist):
    out, _ = dist
    assert '"solutions"' not in (out / "pyproject.toml").read_text()
    assert "student_dist" not in (out / "Makefile").read_text()
    link = re.compile(r"\]\((?!https?:|mailto:|#)([^)\s#]+)")
    for md in out.rglob("*.md"):
        for target in link.findall(md.read_text(encoding="utf-8")):
            assert (md.parent / target).exists(), f"{md.relative_to(out)} links to missing {target}"
    for test in (out / "tests").glob("test_*.py"):
        assert not student_dist.INSTRUCTOR_ONLY_WORDS.search(test.read_text()), test.name


def test_refuses_to_overwrite_or_write_into_the_course(tmp_path):
    (tmp_path / "keep.txt").write_text("x")
    with pytest.raises(student_dist.DistError, match="--force"):
        student_dist.build(tmp_path)
    with pytest.raises(student_dist.DistError, match="outside the course"):
        student_dist.build(ROOT / "course" / "dist")
    with pytest.raises(student_dist.DistError, match="outside the course"):
        student_dist.build(ROOT)
