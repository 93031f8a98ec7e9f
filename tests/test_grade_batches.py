"""An instructor's term with utils/grade.py, as docs/instructors.md tells it, on the `energy` assignment.

One course goes through every step once (grading is the slow part: ~10-30 s a submission on a busy
machine; the run starts with the session's other grading runs, tests/conftest.py's grading_jobs), and each
test inspects what a step left behind:

  batch 1   a Canvas export: a student failing a visible test (late), one failing only a hidden test,
            a blank (untouched) notebook, a broken file, a browser duplicate with no id
  manual    written answers graded for one student through nbgrader's gradebook API (what the Formgrader
            does), with a comment; the others' left unmarked
  batch 2   a week later: the hidden-test student resubmits a corrected notebook (late)
  export    `grade.py export energy`: plain, Canvas and Moodle CSVs, report pages with manual grades
  regrade   "regrade one student": `grade.py autograde energy --student 1002` (same file, manual grades kept)
  fix       "regrade everyone after a test fix": batch 1 and 2 were graded with a wrong hidden test
            (injected here); the source is fixed, released, and `grade.py autograde energy` regrades all

Every page a student gets (nbgrader's feedback/ and the report folders) is checked for hidden tests.
"""
from __future__ import annotations

import csv
import html
import json
import os
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "utils"))
import grade  # noqa: E402
from test_grading import TEST_TIMEOUT, grade_id, make_course, read_nb, source, student_notebook, write_nb  # noqa: E402

NAME = "energy"
# A wrong hidden check, as an instructor might have shipped: it fails for every student. The "fix" removes it.
WRONG_TEST = 'assert energy_from_measurement(1, 1) == 2, "a wrong hidden check"\n'
MARK = "### END HIDDEN TESTS"


def _rows(path: Path) -> dict[str, dict]:
    with open(path, newline="", encoding="utf-8") as fh:
        return {r["student_id"] or r["file"]: r for r in csv.DictReader(fh)}


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _set_wrong_test(course: Path, present: bool) -> None:
    path = course / "solutions" / NAME / f"{NAME}.ipynb"
    nb = read_nb(path)
    cell = next(c for c in nb["cells"] if grade_id(c) == "test_energy_from_measurement")
    text = source(cell).replace(WRONG_TEST, "")
    cell["source"] = text.replace(MARK, WRONG_TEST + MARK) if present else text
    write_nb(nb, path)


def _no_validation(nb: dict) -> dict:
    """energy_from_measurement without its ValueError checks: passes the visible test, fails the hidden one."""
    nb = json.loads(json.dumps(nb))
    cell = next(c for c in nb["cells"] if grade_id(c) == "energy_functions")
    text = source(cell)
    cut = text.index("def energy_from_measurement")
    cell["source"] = text[:cut] + ("def energy_from_measurement(power_watts, tokens_per_second):\n"
                                   "    return power_watts / tokens_per_second\n")
    return nb


def _with_answers(nb: dict) -> dict:
    """The written answers filled in (to be graded by hand)."""
    nb = json.loads(json.dumps(nb))
    for cell in nb["cells"]:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell["cell_type"] == "markdown" and meta.get("solution"):
            cell["source"] = "Utilization 40 %, so the small model wins by a factor of ten."
    return nb


def _hidden_lines(course: Path) -> list[str]:
    """Every line of the source's hidden test blocks that the student release does not show anyway
    (`except ValueError:` is in visible tests too): the strings that must never reach a student."""
    release = {line.strip() for cell in read_nb(course / "assignments" / NAME / f"{NAME}.ipynb")["cells"]
               for line in source(cell).splitlines()}
    lines, inside = [], False
    for cell in read_nb(course / "solutions" / NAME / f"{NAME}.ipynb")["cells"]:
        for line in source(cell).splitlines():
            if "BEGIN HIDDEN TESTS" in line:
                inside = True
            elif "END HIDDEN TESTS" in line:
                inside = False
            elif inside and len(line.strip()) > 12 and line.strip() not in release:
                lines.append(line.strip())
    return sorted(set(lines))


def _page_text(page: Path) -> str:
    """A feedback page as the student reads it: tags removed, entities decoded."""
    text = re.sub(r"<style.*?</style>|<script.*?</script>", " ", page.read_text(encoding="utf-8"), flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", "", text))


def build_term(folder, env=None):
    """The whole term, step by step, in `folder` (run once, by tests/conftest.py's grading_jobs); returns what
    each step left."""
    tmp = Path(folder)
    course = make_course(tmp / "course", [NAME], timeout=TEST_TIMEOUT)
    _set_wrong_test(course, True)
    grade.nbgrader(course, "generate_assignment", NAME, "--force")
    release_nb = read_nb(course / "assignments" / NAME / f"{NAME}.ipynb")
    solution_nb = read_nb(course / "solutions" / NAME / f"{NAME}.ipynb")
    hidden = _no_validation(student_notebook(release_nb, solution_nb))
    options = [] if not __import__("sandbox").sandbox_problem() else ["--no-sandbox"]
    base = ["--course-dir", str(course)]
    state = {"course": course, "hidden_lines": _hidden_lines(course)}

    batch1 = tmp / "canvas-batch-1"
    write_nb(_with_answers(student_notebook(release_nb, solution_nb, leave_out="annual_kwh")),
             batch1 / "doejohn_LATE_1002_5552_energy.ipynb")                      # fails a visible test, late
    write_nb(hidden, batch1 / "roeann_1003_5553_energy.ipynb")                   # fails a hidden test only
    write_nb(release_nb, batch1 / "kimlee_1004_5554_energy.ipynb")               # blank
    (batch1 / "parkmin_1005_5555_energy.ipynb").write_text('{"cells": [')        # broken
    write_nb(release_nb, batch1 / "energy (1).ipynb")                            # no id
    os.utime(batch1 / "roeann_1003_5553_energy.ipynb", (1_795_000_000, 1_795_000_000))
    assert grade.main(base + ["collect-and-grade", NAME, str(batch1)] + options) == 0
    reports = grade.reports_dir(course, NAME)
    state["batch1"] = [p for p in reports.iterdir() if p.is_dir() and p.name not in ("all", "export")]
    assert len(state["batch1"]) == 1
    state["batch1_files"] = _tree(state["batch1"][0])
    state["batch1_all"] = _rows(reports / "all" / "grades.csv")
    state["batch1_pages"] = {sid: _page_text(course / "feedback" / sid / NAME / f"{NAME}.html")
                             for sid in ("1002", "1003", "1004")}

    # manual grading, as the Formgrader stores it: 1002's two written answers, with a comment
    from nbgrader.api import Gradebook
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for gid, points in (("answer_assumptions", 2), ("answer_choice", 3)):
            g = gb.find_grade(gid, NAME, NAME, "1002")
            g.manual_score, g.needs_manual_grade = points, False
        gb.find_comment("answer_assumptions", NAME, NAME, "1002").manual_comment = "Name the utilization you assumed."
        g = gb.find_grade("answer_choice", NAME, NAME, "1003")        # 1003's first file, replaced in batch 2
        g.manual_score, g.needs_manual_grade = 1, False
        gb.db.commit()

    batch2 = tmp / "canvas-batch-2"
    write_nb(_with_answers(student_notebook(release_nb, solution_nb)), batch2 / "roeann_LATE_1003_5563_energy-1.ipynb")
    assert grade.main(base + ["collect-and-grade", NAME, str(batch2)] + options) == 0
    state["batches"] = sorted(p.name for p in reports.iterdir() if p.is_dir() and p.name not in ("all", "export"))
    state["batch2_all"] = _rows(reports / "all" / "grades.csv")
    state["batch2"] = _rows(reports / state["batches"][1] / "grades.csv")

    assert grade.main(base + ["export", NAME, "--canvas-column", "Energy (4321)"]) == 0
    state["export"] = {n: (reports / "export" / n).read_text(encoding="utf-8")
                       for n in ("grades.csv", "canvas.csv", "moodle.csv")}
    state["export_pages"] = {p.stem: _page_text(p) for p in (reports / "all" / "feedback").glob("*.html")}

    assert grade.main(base + ["autograde", NAME, "--student", "1002"] + options) == 0     # regrade one student
    state["regrade_one"] = _rows(reports / "all" / "grades.csv")

    _set_wrong_test(course, False)                                                        # the test fix
    assert grade.main(base + ["release", NAME]) == 0
    assert grade.main(base + ["autograde", NAME] + options) == 0                          # regrade everyone
    assert grade.main(base + ["export", NAME]) == 0
    state["fixed"] = _rows(reports / "export" / "grades.csv")
    state["final_batches"] = sorted(p.name for p in reports.iterdir()
                                    if p.is_dir() and p.name not in ("all", "export"))
    return state


def background_jobs(item):
    """For tests/conftest.py: the term starts with the other grading runs of the session."""
    if "term" in getattr(item, "fixturenames", ()):
        yield 1, "grade_batches:term", build_term


@pytest.fixture(scope="module")
def term(grading_jobs):
    return grading_jobs.result("grade_batches:term", build_term)


# ----------------------------------------------------------------------------------------------
# 1. feedback never shows hidden tests
# ----------------------------------------------------------------------------------------------

def _student_pages(course: Path) -> list[Path]:
    pages = list((course / "feedback").glob(f"*/{NAME}/*.html"))
    pages += list(grade.reports_dir(course, NAME).rglob("*.html"))
    return pages


def test_failing_students_pages_hide_the_hidden_tests(term):
    course, hidden = term["course"], term["hidden_lines"]
    assert len(hidden) > 10 and WRONG_TEST.strip() in hidden
    pages = _student_pages(course)
    assert {p.stem for p in pages} >= {"1002", "1003", "1004", "1005"}
    for page in pages:
        raw = page.read_text(encoding="utf-8")
        assert "HIDDEN TESTS" not in raw, page
        text = _page_text(page)
        leaked = [h for h in hidden if h in text]
        assert not leaked, f"{page} shows hidden test source: {leaked[:3]}"
    for text in term["batch1_pages"].values():
        assert "HIDDEN TESTS" not in text and not [h for h in hidden if h in text]


def test_failing_pages_still_say_what_failed(term):
    pages = term["batch1_pages"]
    assert "NotImplementedError" in pages["1002"]                     # the visible test's error line
    assert "(the test cell's traceback is not shown)" in pages["1002"]
    assert "(the test cell's traceback is not shown)" in pages["1003"]  # the hidden check's error line only
    assert re.search(r"\b\w*Error: ", pages["1003"])
    assert "NotImplementedError" in pages["1004"]
    # before manual grading: 1002's written answers are "not graded yet"; a blank answer is simply 0
    assert "Score: not graded yet / 3.0" in pages["1002"] and "Score: 0.0 / 3.0" not in pages["1002"]
    assert "Score: 0.0 / 3.0" in pages["1004"] and "not graded yet" not in pages["1004"]


def test_the_hidden_only_student_really_passed_the_visible_tests(term):
    """The premise of the test above: 1003's first submission printed `visible tests passed` and lost points."""
    batch1 = term["batch1"][0]
    row = _rows(batch1 / "grades.csv")["1003"]
    assert row["status"] == "graded" and "test_energy_from_measurement 0/2" in row["notes"]
    assert "visible tests passed" in term["batch1_pages"]["1003"]


# ----------------------------------------------------------------------------------------------
# 2. nothing is deleted: batches, merged report, regrading recipes
# ----------------------------------------------------------------------------------------------

def test_second_batch_keeps_the_first_batch_report(term):
    batch1 = term["batch1"][0]
    assert term["batches"][0] == batch1.name and len(term["batches"]) == 2
    assert re.fullmatch(r"\d{4}-\d\d-\d\d_\d{6}(-\d+)?", batch1.name)
    assert _tree(batch1) == term["batch1_files"], "a later batch changed the first batch's report"
    first = _rows(batch1 / "grades.csv")
    assert set(first) == {"1002", "1003", "1004", "1005", "energy (1).ipynb"}


def test_merged_report_has_every_batch(term):
    merged = term["batch2_all"]
    assert set(merged) == {"1002", "1003", "1004", "1005", "energy (1).ipynb"}
    assert merged["1003"]["file"] == "roeann_LATE_1003_5563_energy-1.ipynb" and merged["1003"]["late"] == "yes"
    assert term["batch1_all"]["1003"]["late"] == "" and \
        term["batch1_all"]["1003"]["submitted_at"] == "2026-11-18T11:06:40Z"      # the file's time
    assert merged["1002"]["late"] == "yes" and merged["1002"]["manual"] == "5"
    assert merged["1005"]["status"] == "broken notebook" and merged["1005"]["total"] == "0"
    assert merged["energy (1).ipynb"]["status"] == "no student id"


def test_a_new_file_is_graded_by_hand_again(term):
    """1003's first file had a manual grade; the resubmitted file's written answers are not graded yet."""
    assert "a new file: the manual grades of the earlier one were removed" in term["batch2"]["1003"]["notes"]
    assert term["batch2_all"]["1003"]["manual"] == "not graded yet"


def test_regrade_one_student_keeps_their_manual_grades(term):
    rows = term["regrade_one"]
    assert rows["1002"]["manual"] == "5" and rows["1002"]["late"] == "yes"
    assert rows["1002"]["file"] == "doejohn_LATE_1002_5552_energy.ipynb"         # the LMS file, not submitted/
    assert len(term["final_batches"]) == 4                                          # 2 LMS batches + 2 regrades


def test_regrade_everyone_after_a_test_fix(term):
    before, after = term["batch2_all"], term["fixed"]
    # the wrong check cost everyone with a working energy_from_measurement its 2 points; the fix gives them back
    assert before["1003"]["autograded"] == "12" and after["1003"]["autograded"] == "14"
    assert before["1002"]["autograded"] == "8" and after["1002"]["autograded"] == "10"
    assert after["1004"]["autograded"] == "0"
    assert after["1002"]["manual"] == "5" and after["1002"]["total"] == "15"        # manual grades kept
    assert after["1005"]["status"] == "broken notebook"                            # ungradable rows kept


# ----------------------------------------------------------------------------------------------
# 4. the final export
# ----------------------------------------------------------------------------------------------

def _csv(text: str) -> list[dict]:
    return list(csv.DictReader(text.splitlines()))


def test_export_plain_csv(term):
    rows = {r["student_id"] or r["file"]: r for r in _csv(term["export"]["grades.csv"])}
    assert list(_csv(term["export"]["grades.csv"])[0]) == grade.EXPORT_FIELDS
    assert (rows["1002"]["autograded"], rows["1002"]["manual"], rows["1002"]["total"], rows["1002"]["max"]) == \
        ("8", "5", "13", "20")
    assert rows["1002"]["late"] == "yes" and rows["1002"]["status"] == "graded"
    assert rows["1003"]["manual"] == "not graded yet" and rows["1003"]["total"] == ""
    assert "written answers not graded yet" in rows["1003"]["notes"]
    assert rows["1004"]["manual"] == "0" and rows["1004"]["total"] == "0"     # blank answers: nothing to grade
    assert (rows["1005"]["status"], rows["1005"]["total"]) == ("broken notebook", "0")
    assert rows["energy (1).ipynb"]["status"] == "no student id"


def test_export_canvas_csv(term):
    rows = _csv(term["export"]["canvas.csv"])
    assert list(rows[0]) == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "Energy (4321)"]
    by_id = {r["ID"]: r for r in rows}
    assert by_id["1002"]["Student"] == "doejohn" and by_id["1002"]["Energy (4321)"] == "13"
    assert by_id["1003"]["Energy (4321)"] == ""                                # left blank until graded
    assert by_id["1005"]["Energy (4321)"] == "0"


def test_export_moodle_csv(term):
    rows = _csv(term["export"]["moodle.csv"])
    assert list(rows[0])[:6] == ["Identifier", "Full name", "Email address", "Status", "Grade", "Maximum Grade"]
    by_id = {r["Identifier"]: r for r in rows}
    assert by_id["Participant 1002"]["Grade"] == "13" and by_id["Participant 1002"]["Maximum Grade"] == "20"
    assert by_id["Participant 1003"]["Grade"] == ""
    assert all(r["Feedback comments"] == "" for r in rows)            # students read it; the notes are yours


def test_report_pages_show_manual_grades_and_not_graded_yet(term):
    pages = term["export_pages"]
    assert "Name the utilization you assumed." in pages["1002"]          # the grader's comment
    assert "Score: 2.0 / 3.0" in pages["1002"] and "not graded yet" not in pages["1002"]
    assert "Score: not graded yet / 3.0" in pages["1003"] and "Score: 0.0 / 3.0" not in pages["1003"]
    assert "written answers not graded yet" in pages["1003"]
    assert "could not be graded" in pages["1005"]
