"""Student ids from the file names LMS exports give (utils/grade.py), the --dry-run mapping, .gitignore.

Fast: nothing is graded. The names are the schemes of each LMS's "download all submissions", with the
adversarial ones instructors meet: a browser's "(1)" duplicate suffix, dates and times in the name,
Canvas' -1 resubmission suffix and LATE marker, names without any id.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "utils"))
import grade  # noqa: E402


# (file name, id, name, late, time written in the name)
LMS_NAMES = [
    # Canvas: <lastfirst>_[LATE_]<user id>_<submission id>_<original name>[-n]
    ("smithjohn_12345_67890_energy.ipynb", "12345", "smithjohn", False, ""),
    ("smithjohn_LATE_12345_67890_energy.ipynb", "12345", "smithjohn", True, ""),
    ("smithjohn_12345_67890_energy-1.ipynb", "12345", "smithjohn", False, ""),
    ("smithjohn_LATE_12345_67891_energy-2.ipynb", "12345", "smithjohn", True, ""),
    ("smithjohn_12345_67890_energy (1).ipynb", "12345", "smithjohn", False, ""),
    # Moodle: <Full Name>_<participant id>_assignsubmission_file_<original name>, or a folder per student
    ("John Smith_12345_assignsubmission_file_energy.ipynb", "12345", "John Smith", False, ""),
    ("John Smith_12345_assignsubmission_file_/energy.ipynb", "12345", "John Smith", False, ""),
    ("Zoë O'Neil-Brown_98765_assignsubmission_file_energy (2).ipynb", "98765", "Zoë O'Neil-Brown", False, ""),
    # Blackboard: <Assignment>_<username>_attempt_<YYYY-MM-DD-HH-MM-SS>_<original name>
    ("Energy_jsmith_attempt_2026-11-20-10-15-30_energy.ipynb", "jsmith", "", False, "2026-11-20T10:15:30"),
    ("Energy Assignment_jsmith2_attempt_2026-11-20-23-59-01_my notebook.ipynb", "jsmith2", "", False,
     "2026-11-20T23:59:01"),
    # Brightspace: <submission id>-<user id> - <Full Name> - <Mon D, YYYY HMM AM> - <original name> (or a folder)
    ("12345-67890 - John Smith - Nov 20, 2026 1015 AM - energy.ipynb", "67890", "John Smith", False,
     "2026-11-20T10:15:00"),
    ("12346-67891 - Ann Lee - Dec 1, 2026 1205 PM/energy.ipynb", "67891", "Ann Lee", False, "2026-12-01T12:05:00"),
    # Google Classroom (the assignment's Drive folder): <Full Name> - <original name>; the id is made from the name
    ("John Smith - energy.ipynb", "john_smith", "John Smith", False, ""),
    ("José García - energy (1).ipynb", "jose_garcia", "José García", False, ""),
    # plain names with a student number
    ("s1234567_energy.ipynb", "s1234567", "", False, ""),
    ("energy_s1234567 (3).ipynb", "s1234567", "", False, ""),
    ("Energy_2026_s12345.ipynb", "s12345", "", False, ""),        # the year is skipped, not taken
]


@pytest.mark.parametrize("file_name, sid, name, late, when", LMS_NAMES)
def test_lms_file_names(file_name, sid, name, late, when):
    found = grade.parse_file_name(file_name, "energy")
    assert (found.student_id, found.name, found.late, found.lms_time) == (sid, name, late, when), found
    assert not found.problem


# file names that must give no id, and the reason the instructor is told
REFUSED = [
    ("energy (1).ipynb", "no student id found"),                   # a browser's duplicate number is no id
    ("energy (12).ipynb", "no student id found"),
    ("energy-1.ipynb", "'1' is too short for a student id"),
    ("energy_v2.ipynb", "'v2' is too short"),
    ("energy_2026.ipynb", "'2026' looks like a date"),
    ("energy_2026-11-20.ipynb", "'2026' looks like a date"),
    ("energy_20261120.ipynb", "'20261120' looks like a date"),
    ("2026-11-20 10.15.30 energy.ipynb", "looks like a date"),
    ("energy - Copy.ipynb", "no student id found"),                # not a Google Classroom name
    ("Copy of energy.ipynb", "no student id found"),
    ("energy.ipynb", "no student id found"),
    ("John Smith - my notes.ipynb", "no student id found"),        # not this assignment's notebook
]


@pytest.mark.parametrize("file_name, why", REFUSED)
def test_ids_that_are_refused(file_name, why):
    found = grade.parse_file_name(file_name, "energy")
    assert found.student_id is None and why in found.problem, found
    assert grade.student_id_from_name(file_name, "energy") is None


def test_id_pattern_is_checked_too():
    assert grade.parse_file_name("x/ab12-energy (3).ipynb", "energy", r"([a-z]+\d+)-").student_id == "ab12"
    assert "looks like a date" in grade.parse_file_name("2026-energy.ipynb", "energy", r"^(\d+)-").problem
    assert "too short" in grade.parse_file_name("7-energy.ipynb", "energy", r"^(\d+)-").problem
    assert "does not match" in grade.parse_file_name("energy.ipynb", "energy", r"(\d+)").problem


def test_the_same_student_twice_is_one_id():
    """Canvas' resubmission (-1), a late one and a browser copy all belong to one student: one is graded."""
    names = ["smithjohn_12345_67890_energy.ipynb", "smithjohn_LATE_12345_67899_energy-1.ipynb",
             "smithjohn_12345_67890_energy (1).ipynb"]
    assert {grade.student_id_from_name(n, "energy") for n in names} == {"12345"}


def test_dry_run_prints_the_mapping_and_writes_nothing(tmp_path, capsys):
    from test_grading import make_course

    course = make_course(tmp_path / "course", ["energy"])
    export = tmp_path / "export"
    export.mkdir()
    nb = json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5})
    for name in ("smithjohn_LATE_12345_67890_energy.ipynb", "Energy_jsmith_attempt_2026-11-20-10-15-30_energy.ipynb",
                 "Energy_jsmith_attempt_2026-11-20-10-15-30.txt", "energy (1).ipynb", "energy_2026.ipynb"):
        (export / name).write_text(nb)
    before = sorted(p.name for p in course.iterdir())
    assert grade.main(["--course-dir", str(course), "collect-and-grade", "energy", str(export), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "file -> student id:" in out and "dry run: nothing was filed, graded or written" in out
    lines = {line.split("->")[0].strip(): line.split("->")[1].strip() for line in out.splitlines() if "->" in line
             and not line.startswith("file")}
    assert lines["smithjohn_LATE_12345_67890_energy.ipynb"].startswith("12345  (read as Canvas export, LATE")
    assert lines["Energy_jsmith_attempt_2026-11-20-10-15-30_energy.ipynb"].startswith("jsmith")
    assert "Energy_jsmith_attempt_2026-11-20-10-15-30.txt" not in lines     # Blackboard's receipt is skipped
    assert lines["energy (1).ipynb"].startswith("(none: no student id found")
    assert lines["energy_2026.ipynb"].startswith("(none: '2026' looks like a date")
    assert sorted(p.name for p in course.iterdir()) == before, "a dry run must not write anything"


@pytest.mark.parametrize("path", ["grades.csv", "reports/energy/all/grades.csv", "some/where/grades.csv",
                                  "gradebook.db", "reports/energy/2026-11-20_101530/feedback/12345.html",
                                  "reports/energy/export/canvas.csv", "submitted/12345/energy/energy.ipynb",
                                  "autograded/x/energy/energy.ipynb", "feedback/x/energy/energy.html"])
def test_grades_and_grading_state_are_git_ignored(path):
    """Student grades are never one `git add -A` away from being published (nbgrader export writes
    grades.csv in the repository root)."""
    result = subprocess.run(["git", "check-ignore", "--no-index", "-q", path], cwd=ROOT)
    assert result.returncode == 0, f"{path} is not ignored by .gitignore"
