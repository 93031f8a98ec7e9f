"""Grading round-trips for the nbgrader assignments (solutions/ -> assignments/ -> autograde).

Everything runs in temporary copies of the course (tmp_path): the repository's files, gradebook and
folders are never touched. The autograding tests are marked `slow` (select or skip them with
`-m slow` / `-m "not slow"`); `make test` runs them all.

For every assignment, one nbgrader run grades four synthetic students at once:
  solution  the release with every solution filled in      -> full autograded marks
  release   the untouched student release                 -> zero, without crashing
  broken    one function left unimplemented                -> strictly between
  loop      one function stuck in an infinite loop         -> stopped by the timeout, the rest graded
The assignments are graded in parallel (a few at a time, with the session's other grading runs:
tests/conftest.py's grading_jobs) to keep the wall time down.
Note: nbgrader scores a test cell 0 if it writes anything to stderr (a warning, too); the assignments
silence warnings while graded, and the solutions must pass here.
"""
from __future__ import annotations

import csv
import functools
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "utils"))
import grade  # noqa: E402  (utils/grade.py, the instructor command)

ASSIGNMENTS = grade.assignment_names(ROOT)
# Per-cell timeout while testing: long enough for the slowest graded cell on a busy 2-core machine,
# short enough that the infinite-loop submissions do not dominate the run time.
TEST_TIMEOUT = 30

# For each assignment: the solution cell left unimplemented ("broken"), and the (solution cell,
# function) made to loop forever. The looping function's test cell must not be the last graded cell.
CASES = {
    "attention_variants": {"broken": "alibi", "loop": ("sliding_window", "sliding_window_mask")},
    "compression": {"broken": "prune", "loop": ("quantize_int8", "dequantize_int8")},
    "size_vs_task": {"broken": "reading", "loop": ("scoring", "sequence_logprob")},
    "domain_finetuning": {"broken": "retrieval", "loop": ("lora_linear", "lora_delta")},
    "energy": {"broken": "annual_kwh", "loop": ("energy_functions", "energy_from_measurement")},
}
STUDENTS = ("solution", "release", "broken", "loop")
MARKER = re.compile(r"^\s*### (BEGIN|END) SOLUTION\s*$")


# ----------------------------------------------------------------------------------------------
# building synthetic submissions
# ----------------------------------------------------------------------------------------------

def read_nb(path: Path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def write_nb(nb: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(nb, indent=1), encoding="utf-8")


def grade_id(cell: dict) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def source(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def student_notebook(release_nb: dict, solution_nb: dict, leave_out: str | None = None,
                     loop: tuple[str, str] | None = None) -> dict:
    """The release with the solution code filled in (markers removed), as a student would hand it in."""
    solutions = {grade_id(c): source(c) for c in solution_nb["cells"] if grade_id(c)}
    nb = json.loads(json.dumps(release_nb))
    for cell in nb["cells"]:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell["cell_type"] != "code" or not meta.get("solution") or meta.get("grade_id") == leave_out:
            continue
        code = "\n".join(line for line in solutions[meta["grade_id"]].split("\n") if not MARKER.match(line))
        if loop and meta["grade_id"] == loop[0]:
            code += (f"\n\n\ndef {loop[1]}(*args, **kwargs):  # a submission stuck in an infinite loop\n"
                     "    import time\n    while True:\n        time.sleep(0.05)  # sleeps: keeps the CPU free\n")
        cell["source"] = code
    return nb


def make_course(root: Path, assignments: list[str], timeout: int | None = None) -> Path:
    """A scratch course directory: nbgrader_config.py and the assignments' solutions/ folders."""
    root.mkdir(parents=True, exist_ok=True)
    config = (ROOT / "nbgrader_config.py").read_text()
    if timeout is not None:
        config += f"\nc.Execute.timeout = {timeout}  # tests only\n"
    (root / "nbgrader_config.py").write_text(config)
    for name in assignments:
        shutil.copytree(ROOT / "solutions" / name, root / "solutions" / name,
                        ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    return root


def autograde_four_students(name: str, course: Path) -> Path:
    make_course(course, [name], timeout=TEST_TIMEOUT)
    grade.nbgrader(course, "generate_assignment", name, "--force")
    release_nb = read_nb(course / "assignments" / name / f"{name}.ipynb")
    solution_nb = read_nb(course / "solutions" / name / f"{name}.ipynb")
    case = CASES[name]
    notebooks = {
        "solution": student_notebook(release_nb, solution_nb),
        "release": release_nb,
        "broken": student_notebook(release_nb, solution_nb, leave_out=case["broken"]),
        "loop": student_notebook(release_nb, solution_nb, loop=case["loop"]),
    }
    for student, nb in notebooks.items():
        write_nb(nb, course / "submitted" / student / name / f"{name}.ipynb")
    result = grade.nbgrader(course, "autograde", name, "--force", check=False)
    (course / "autograde.log").write_text(result.stdout + result.stderr)
    return course


def autograde_job(name: str, folder, env=None) -> Path:
    return autograde_four_students(name, Path(folder) / name)


def _four_students(name: str):
    return functools.partial(autograde_job, name)


def background_jobs(item):
    """For tests/conftest.py: each assignment a selected test needs is graded once, with the session's other
    grading runs (a few at a time); each test waits for its own."""
    if "graded" in getattr(item, "fixturenames", ()) and hasattr(item, "callspec"):
        name = item.callspec.params["name"]
        yield 2, f"grading:graded:{name}", _four_students(name)
    if getattr(item, "originalname", None) == "test_collect_and_grade_end_to_end":
        yield 3, "grading:end_to_end", run_end_to_end
    if getattr(item, "originalname", None) == "test_committed_release_matches_solutions":
        yield 4, "grading:release", release_problems
    if getattr(item, "originalname", None) == "test_release_check_notices_drift":
        yield 4, "grading:release_drift", release_drift


@pytest.fixture(scope="module")
def graded(grading_jobs):
    """name -> the graded course of that assignment (autograde_four_students), from the session's grading runs."""
    return {name: _Lazy(grading_jobs, f"grading:graded:{name}", _four_students(name)) for name in ASSIGNMENTS}


class _Lazy:
    """`.result()` waits for (or runs) one of the session's grading runs."""

    def __init__(self, jobs, key, function):
        self.jobs, self.key, self.function = jobs, key, function

    def result(self):
        return self.jobs.result(self.key, self.function)


def scores(course: Path, name: str) -> dict[str, tuple[float, float]]:
    from nbgrader.api import Gradebook, MissingEntry

    out = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for student in STUDENTS:
            try:
                sub = gb.find_submission(name, student)
            except MissingEntry:
                continue
            out[student] = (float(sub.code_score), float(sub.max_code_score))
    return out


def cell_scores(course: Path, name: str, student: str) -> list[tuple[str, float, float]]:
    """(grade_id, score, max) of the autograded test cells, in notebook order."""
    from nbgrader.api import Gradebook

    order = [grade_id(c) for c in read_nb(course / "autograded" / student / name / f"{name}.ipynb")["cells"]]
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        grades = {g.name: g for nb in gb.find_submission(name, student).notebooks for g in nb.grades
                  if g.cell_type == "code"}
        return [(gid, float(grades[gid].score), float(grades[gid].max_score)) for gid in order if gid in grades]


def results(graded, name: str) -> tuple[Path, dict[str, tuple[float, float]]]:
    course = graded[name].result()
    found = scores(course, name)
    missing = [s for s in STUDENTS if s not in found]
    assert not missing, f"nbgrader did not grade {missing}:\n" + (course / "autograde.log").read_text()[-3000:]
    return course, found


# ----------------------------------------------------------------------------------------------
# every assignment: structure (fast)
# ----------------------------------------------------------------------------------------------

def test_every_assignment_has_a_case():
    assert ASSIGNMENTS and not set(ASSIGNMENTS) - set(CASES), "add the new assignment to CASES"


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_source_notebook_is_well_formed(name):
    import slmcourse

    nb = read_nb(ROOT / "solutions" / name / f"{name}.ipynb")
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    stamp = nb["metadata"]["slmcourse"]
    assert stamp["assignment"] == name and stamp["version"] == slmcourse.__version__
    ids = [grade_id(c) for c in nb["cells"] if grade_id(c)]
    assert len(ids) == len(set(ids)), "grade ids must be unique"
    auto = sum(c["metadata"]["nbgrader"]["points"] for c in nb["cells"]
               if grade_id(c) and c["metadata"]["nbgrader"]["grade"] and c["cell_type"] == "code")
    manual = sum(c["metadata"]["nbgrader"]["points"] for c in nb["cells"]
                 if grade_id(c) and c["metadata"]["nbgrader"]["grade"] and c["cell_type"] == "markdown")
    assert (auto, manual) == (stamp["points_autograded"], stamp["points_manual"])
    assert auto > 0 and manual > 0 and auto + manual == 20
    for cell in nb["cells"]:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("task"):
            assert not meta.get("grade"), "a task cell must be grade: false or its points count twice"
        if meta.get("grade") and cell["cell_type"] == "code":
            assert meta.get("locked"), f"test cell {meta['grade_id']} must be locked"
    case = CASES[name]
    assert case["broken"] in ids and case["loop"][0] in ids
    assert f"def {case['loop'][1]}(" in source(next(c for c in nb["cells"] if grade_id(c) == case["loop"][0]))


# ----------------------------------------------------------------------------------------------
# every assignment: autograding (slow)
# ----------------------------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_solution_gets_full_marks(graded, name):
    course, found = results(graded, name)
    score, maximum = found["solution"]
    lost = [c for c in cell_scores(course, name, "solution") if c[1] < c[2]]
    assert maximum > 0 and score == maximum, f"the solution lost points in {lost}"


@pytest.mark.slow
@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_untouched_release_scores_zero(graded, name):
    course, found = results(graded, name)
    assert found["release"][0] == 0, cell_scores(course, name, "release")
    assert (course / "autograded" / "release" / name / f"{name}.ipynb").is_file()


@pytest.mark.slow
@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_one_broken_function_scores_between(graded, name):
    course, found = results(graded, name)
    score, maximum = found["broken"]
    assert 0 < score < maximum, cell_scores(course, name, "broken")


@pytest.mark.slow
@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_infinite_loop_is_stopped_and_the_rest_graded(graded, name):
    course, found = results(graded, name)
    score, maximum = found["loop"]
    assert 0 < score < maximum
    autograded = read_nb(course / "autograded" / "loop" / name / f"{name}.ipynb")
    timed_out = [grade_id(c) for c in autograded["cells"]
                 if any(o.get("ename") == "CellTimeoutError" for o in c.get("outputs", []))]
    assert timed_out, "no cell was interrupted by the timeout"
    cells = cell_scores(course, name, "loop")
    first = next(i for i, c in enumerate(cells) if c[0] in timed_out)
    assert cells[first][1] == 0
    assert any(s == m > 0 for _, s, m in cells[first + 1:]), f"nothing after the loop was graded: {cells}"


# ----------------------------------------------------------------------------------------------
# the release in assignments/ is what generate_assignment makes from solutions/
# ----------------------------------------------------------------------------------------------

def release_problems(folder=None, env=None) -> list[str]:
    return grade.release_differences(ROOT)


def release_drift(folder, env=None) -> dict:
    """A changed source: the release check names the notebook, `grade.py release` regenerates it."""
    tmp_path = Path(folder)
    course = make_course(tmp_path / "course", ["energy"])
    shutil.copytree(ROOT / "assignments" / "energy", course / "assignments" / "energy")
    nb_path = course / "solutions" / "energy" / "energy.ipynb"
    nb = read_nb(nb_path)
    nb["cells"][1]["source"] = "# changed instructions\n"
    write_nb(nb, nb_path)
    found = grade.release_differences(course, ["energy"])
    code = grade.main(["--course-dir", str(course), "release", "energy"])
    return {"differences": found, "code": code,
            "release": (course / "assignments" / "energy" / "energy.ipynb").read_text()}


@pytest.mark.slow
def test_committed_release_matches_solutions(grading_jobs):
    problems = grading_jobs.result("grading:release", release_problems)
    assert not problems, "\n".join(problems) + "\nrun `python utils/grade.py release` and commit assignments/"


@pytest.mark.slow
def test_release_check_notices_drift(grading_jobs):
    drift = grading_jobs.result("grading:release_drift", release_drift)
    assert drift["differences"] == ["assignments/energy/energy.ipynb differs from what solutions/energy generates"]
    assert drift["code"] == 0
    assert "changed instructions" in drift["release"]


# ----------------------------------------------------------------------------------------------
# the instructor command, end to end
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("file_name, expected", [
    ("s1234567_energy.ipynb", "s1234567"),
    ("energy_s1234567.ipynb", "s1234567"),
    ("smithjane_12345_67890_energy.ipynb", "12345"),          # Canvas
    ("smithjane_LATE_12345_67890_energy-1.ipynb", "12345"),   # Canvas, late resubmission
    ("Jane Smith_12345_assignsubmission_file_energy.ipynb", "12345"),  # Moodle
    ("Jane Smith_12345_assignsubmission_file_/energy.ipynb", "12345"),  # Moodle, one folder per student
    ("energy.ipynb", None),
])
def test_student_id_from_lms_file_names(file_name, expected):
    assert grade.student_id_from_name(file_name, "energy") == expected


def test_student_id_pattern():
    assert grade.student_id_from_name("x/ab12-energy (3).ipynb", "energy", r"([a-z]+\d+)-") == "ab12"
    assert grade.student_id_from_name("energy.ipynb", "energy", r"(\d+)") is None


def run_end_to_end(folder, env=None) -> dict:
    """An LMS export of energy submissions through `grade.py collect-and-grade`, twice (one of the session's
    grading runs, tests/conftest.py); returns what the checks below read, the first run's taken right after it."""
    tmp_path = Path(folder)
    name = "energy"
    course = make_course(tmp_path / "course", [name])
    grade.nbgrader(course, "generate_assignment", name, "--force")
    release_nb = read_nb(course / "assignments" / name / f"{name}.ipynb")
    solution_nb = read_nb(course / "solutions" / name / f"{name}.ipynb")
    good = student_notebook(release_nb, solution_nb)
    subs = tmp_path / "export"
    write_nb(good, subs / "smithjane_1001_5551_energy.ipynb")                               # good
    write_nb(student_notebook(release_nb, solution_nb, leave_out="annual_kwh"),
             subs / "doejohn_1002_5552_energy.ipynb")                                       # partial
    (subs / "roeann_1003_5553_energy.ipynb").write_text('{"cells": [ {"cell_type": "co')  # broken JSON
    (subs / "lee_1004_5554_energy.pdf").write_bytes(b"%PDF-1.4 not a notebook")             # not a notebook
    (subs / "kim_1005_5555_energy.ipynb").write_bytes(b"")                                  # empty file
    renamed = json.loads(json.dumps(good))                                                  # renamed test cell
    for cell in renamed["cells"]:
        if grade_id(cell) == "test_annual_kwh":
            cell["metadata"]["nbgrader"]["grade_id"] = "my_tests"
    renamed["metadata"]["slmcourse"]["version"] = "0.0.1"                                   # older release
    write_nb(renamed, subs / "park_1006_5556_energy.ipynb")
    write_nb(release_nb, subs / "nobody_energy.ipynb")                                      # no id in the name
    (subs / ".DS_Store").write_bytes(b"\0")                                                 # ignored
    # another student, graded in an earlier batch: must stay as it is
    other = course / "submitted" / "9999" / name / f"{name}.ipynb"
    write_nb(good, other)
    before = {p: p.read_bytes() for p in subs.rglob("*") if p.is_file()}

    out = tmp_path / "report"
    argv = ["--course-dir", str(course), "collect-and-grade", name, str(subs), "--out", str(out)]
    import sandbox
    if sandbox.sandbox_problem():      # no bubblewrap here: the same pipeline, unsandboxed (tests/test_sandbox.py skips)
        argv.append("--no-sandbox")
    first = {"code": grade.main(argv)}
    if first["code"] != 0:
        return {"first": first}
    first["csv"] = (out / "grades.csv").read_text()
    first["feedback"] = sorted(p.name for p in (out / "feedback").iterdir())
    first["pages"] = {p.stem: p.read_text() for p in (out / "feedback").iterdir()}
    first["submitted_1001"] = (course / "submitted" / "1001" / name / f"{name}.ipynb").read_bytes()
    first["submitted_1004"] = (course / "submitted" / "1004").exists()
    first["autograded_9999"] = (course / "autograded" / "9999").exists()
    first["other"] = read_nb(other)
    first["export"] = {p: p.read_bytes() for p in subs.rglob("*") if p.is_file()}
    # running it again gives the same grades; the first report is kept beside it, not deleted
    second = {"code": grade.main(argv)}
    second["csv"] = (out / "grades.csv").read_text() if (out / "grades.csv").is_file() else None
    second["kept"] = {k.name: (k / "grades.csv").read_text() for k in tmp_path.glob("report.*")}
    return {"subs": subs, "good": good, "before": before, "first": first, "second": second}


@pytest.mark.slow
def test_collect_and_grade_end_to_end(grading_jobs):
    run = grading_jobs.result("grading:end_to_end", run_end_to_end)
    first = run["first"]
    assert first["code"] == 0
    subs, good, before, second = run["subs"], run["good"], run["before"], run["second"]
    rows = list(csv.DictReader(first["csv"].splitlines()))
    first_csv = first["csv"]
    expected = [
        ("1001", "smithjane_1001_5551_energy.ipynb", "graded", "14", "6 manual points pending"),
        ("1002", "doejohn_1002_5552_energy.ipynb", "graded", "10",
         "lost points: test_annual_kwh 0/4; 6 manual points pending"),
        ("1003", "roeann_1003_5553_energy.ipynb", "broken notebook", "0", "not valid notebook JSON"),
        ("1004", "lee_1004_5554_energy.pdf", "not a notebook", "0",
         "a .pdf file was submitted instead of a .ipynb notebook"),
        ("1005", "kim_1005_5555_energy.ipynb", "empty file", "0", "the file is empty (0 bytes)"),
        ("1006", "park_1006_5556_energy.ipynb", "graded", "14",
         "made from course version 0.0.1, graded with version"),
        ("", "nobody_energy.ipynb", "no student id", "", "no student id found in the file name"),
    ]
    assert [(r["student_id"], r["file"], r["status"], r["autograded_score"]) for r in rows] == \
        [e[:4] for e in expected]
    for row, (*_, note) in zip(rows, expected):
        assert note in row["notes"], (row, note)
        assert row["autograded_max"] == ("14" if row["student_id"] else "")
    assert "missing or renamed cells restored by the grader: test_annual_kwh" in rows[5]["notes"]
    import slmcourse
    assert rows[0]["course_version"] == slmcourse.__version__ and rows[4]["course_version"] == ""
    # feedback for every student with an id, and nothing for anyone else
    assert first["feedback"] == [f"{i}.html" for i in ("1001", "1002", "1003", "1004", "1005", "1006")]
    assert "could not be graded" in first["pages"]["1004"]
    page = first["pages"]["1001"]
    assert "flops_per_token" in page and "visible tests passed" in page
    assert "HIDDEN TESTS" not in page and "Random(7)" not in page, "feedback must not reveal hidden tests"
    # each student's work is filed in its own folder, byte for byte; the earlier student is untouched
    assert first["submitted_1001"] == (subs / "smithjane_1001_5551_energy.ipynb").read_bytes()
    assert not first["submitted_1004"]
    assert not first["autograded_9999"] and first["other"] == good
    assert first["export"] == before, "the export was modified"

    assert (rows[0]["name"], rows[0]["late"]) == ("smithjane", "") and rows[0]["submitted_at"].endswith("Z")
    assert "read as Canvas export" in rows[0]["notes"]

    # running it again gives the same grades; the first report is kept beside it, not deleted
    assert second["code"] == 0
    assert second["csv"] == first_csv
    kept = list(second["kept"].values())
    assert len(kept) == 1 and kept[0] == first_csv


def test_collect_and_grade_refuses_bad_arguments(tmp_path):
    course = make_course(tmp_path / "course", ["energy"])
    assert grade.main(["--course-dir", str(course), "collect-and-grade", "nosuch", str(tmp_path)]) == 2
    assert grade.main(["--course-dir", str(course), "collect-and-grade", "energy", str(tmp_path / "none")]) == 2
    assert grade.main(["--course-dir", str(tmp_path / "none"), "release", "--check"]) == 2


def test_command_line_help_runs():
    result = subprocess.run([sys.executable, str(ROOT / "utils" / "grade.py"), "--help"],
                            capture_output=True, text=True)
    assert result.returncode == 0 and "collect-and-grade" in result.stdout
