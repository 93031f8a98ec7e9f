"""The instructor's command for the course's nbgrader assignments.

    python utils/grade.py list
        the assignments, their points, and whether the student release is up to date

    python utils/grade.py release [ASSIGNMENT ...] [--check]
        regenerate assignments/ (the student release) from solutions/ with `nbgrader generate_assignment`;
        with --check change nothing and exit 1 if assignments/ differs from what it would generate

    python utils/grade.py collect-and-grade ASSIGNMENT SUBMISSIONS_FOLDER [--out DIR] [--id-pattern REGEX] [--dry-run]
        take the files an LMS exports (one per student; Canvas, Moodle, Blackboard, Brightspace, Google
        Classroom names are recognised), print the file -> student id mapping (--dry-run: only that),
        file them into nbgrader's layout (submitted/<id>/<assignment>/<assignment>.ipynb), autograde them
        and write this batch's grades.csv and one feedback page per student into --out (default
        reports/<assignment>/<date>_<time>/); then rebuild the merged report reports/<assignment>/all/

    python utils/grade.py autograde ASSIGNMENT [--student ID ...] [--out DIR]
        the same for what is filed in submitted/<student>/<assignment>/ (`nbgrader collect` on a
        JupyterHub, or the files of earlier batches): regrade everyone after a test fix, or one student

    python utils/grade.py export ASSIGNMENT [--out DIR] [--canvas-column 'Energy (12345)']
        after manual grading: feedback pages refreshed with the manual scores and comments, and
        grades.csv, canvas.csv, moodle.csv (autograded, manual, total, late, status) in
        reports/<assignment>/export/

    python utils/grade.py exchange {release,collect,feedback} ASSIGNMENT
        JupyterHub: release into nbgrader's exchange (and the gradebook), collect from it and autograde as
        above, release the feedback (utils/grade_exchange.py; docs/jupyterhub.md)

    Both run every submission's kernel in the grading sandbox (utils/sandbox.py: bubblewrap, read-only
    system, one writable scratch folder, no network, memory/process/CPU limits), one student at a time,
    each stopped after --time-limit seconds (default 1200; then "grading failed", and the batch goes
    on); --memory-limit MIB overrides the memory limit taken from course/BUDGET.md. Without a usable
    sandbox they refuse, unless --no-sandbox (student code then runs with your rights).

Run it with the course's Python (`.venv/bin/python utils/grade.py ...`): nbgrader, the kernel and the
course package must come from the same environment. It works from any directory; nbgrader itself is
always started in the course directory (where nbgrader_config.py is), because nbgrader reads its
configuration from the current directory only.

A submission that cannot be graded (an empty file, a file that is not a notebook, invalid notebook
JSON) is reported in grades.csv with 0 points and never stops the batch; a file with no usable
student id in its name (none, too short, date-like) is reported with no score until it is renamed.
Only the folders of the students in the batch are written; a file whose id another file of the batch
also claims is reported, not silently merged. Nothing is deleted: each batch has its own report
folder, reports/<assignment>/history.csv keeps every batch's rows, and the merged report is rebuilt
from them and the gradebook. Students' feedback pages never show the hidden tests (nbgrader_config.py's
HideTestTracebacks reduces a test cell's traceback to its error line).

Subcommands are the entries of COMMANDS (name -> help, arguments, run): add one there.
"""
from __future__ import annotations

import argparse
import csv
import html
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "utils") not in sys.path:      # utils/sandbox.py, beside this file
    sys.path.insert(0, str(ROOT / "utils"))
CSV_FIELDS = ["student_id", "name", "file", "status", "late", "submitted_at", "autograded_score", "autograded_max",
              "manual_max", "course_version", "notes"]
# An id is what nbgrader uses as a folder name: keep it to safe characters (no "..", no "/").
# Wall time one submission may take in all (each cell also stops at nbgrader_config.py's timeout).
SUBMISSION_WALL_SECONDS = 1200
SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
IGNORED_FILES = {".DS_Store", "Thumbs.db", "desktop.ini"}


class GradingError(RuntimeError):
    """A problem the instructor must fix (not a problem of one submission)."""


# ----------------------------------------------------------------------------------------------
# running nbgrader
# ----------------------------------------------------------------------------------------------

def _environment() -> dict[str, str]:
    env = dict(os.environ)
    # nbgrader runs `alembic` from PATH: put this interpreter's bin/ (the course's venv) first.
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    env.pop("NBGRADER_EXECUTION", None)
    return env


def nbgrader(course_dir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run one nbgrader command in `course_dir` (the only place it reads nbgrader_config.py from)."""
    if not (course_dir / "nbgrader_config.py").is_file():
        raise GradingError(f"{course_dir} has no nbgrader_config.py: it is not a course directory")
    result = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course_dir, env=_environment(),
                            capture_output=True, text=True)
    if check and result.returncode != 0:
        raise GradingError(f"`nbgrader {' '.join(args)}` failed in {course_dir}:\n{result.stdout}{result.stderr}")
    return result


def assignment_names(course_dir: Path = ROOT) -> list[str]:
    source = course_dir / "solutions"
    return sorted(p.name for p in source.iterdir() if (p / f"{p.name}.ipynb").is_file()) if source.is_dir() else []


def _check_assignment(course_dir: Path, assignment: str) -> None:
    names = assignment_names(course_dir)
    if assignment not in names:
        raise GradingError(f"unknown assignment {assignment!r}; the assignments are: {', '.join(names)}")


def _read_json(path: Path) -> dict:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


# ----------------------------------------------------------------------------------------------
# release
# ----------------------------------------------------------------------------------------------

def _drop_execution_stamp(path: Path) -> None:
    """Remove the `make outputs` stamp and the cells' execution timings before releasing:
    the student release does not depend on where the instructor's copy was last executed."""
    nb = _read_json(path)
    changed = nb.get("metadata", {}).get("slmcourse", {}).pop("execution", None) is not None
    for cell in nb.get("cells", []):   # nbclient's per-cell timings of that run, too
        changed |= cell.get("metadata", {}).pop("execution", None) is not None
    if changed:
        path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def generate_release(course_dir: Path, assignments: list[str], into: Path) -> None:
    """Run generate_assignment on a scratch copy of the course so nothing in `course_dir` changes."""
    with tempfile.TemporaryDirectory(prefix="slm-release-") as scratch:
        scratch = Path(scratch)
        shutil.copy2(course_dir / "nbgrader_config.py", scratch / "nbgrader_config.py")
        for name in assignments:
            shutil.copytree(course_dir / "solutions" / name, scratch / "solutions" / name,
                            ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
            for source in (scratch / "solutions" / name).glob("*.ipynb"):
                _drop_execution_stamp(source)
            nbgrader(scratch, "generate_assignment", name, "--force")
            shutil.copytree(scratch / "assignments" / name, into / name)


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and ".ipynb_checkpoints" not in p.parts and "__pycache__" not in p.parts}


def release_differences(course_dir: Path = ROOT, assignments: list[str] | None = None) -> list[str]:
    """What differs between assignments/ and a fresh `generate_assignment` (empty list: up to date)."""
    names = assignments or assignment_names(course_dir)
    for name in names:
        _check_assignment(course_dir, name)
    problems = []
    with tempfile.TemporaryDirectory(prefix="slm-release-check-") as fresh:
        fresh = Path(fresh)
        generate_release(course_dir, names, fresh)
        for name in names:
            want, have = _tree(fresh / name), _tree(course_dir / "assignments" / name) \
                if (course_dir / "assignments" / name).is_dir() else {}
            for rel in sorted(set(want) | set(have)):
                if rel not in have:
                    problems.append(f"assignments/{name}/{rel} is missing")
                elif rel not in want:
                    problems.append(f"assignments/{name}/{rel} is not generated from solutions/{name}")
                elif want[rel] != have[rel]:
                    problems.append(f"assignments/{name}/{rel} differs from what solutions/{name} generates")
    return problems


def release(course_dir: Path = ROOT, assignments: list[str] | None = None) -> list[str]:
    """Regenerate assignments/<name>/ for each assignment; returns the names released."""
    names = assignments or assignment_names(course_dir)
    for name in names:
        _check_assignment(course_dir, name)
    with tempfile.TemporaryDirectory(prefix="slm-release-") as fresh:
        fresh = Path(fresh)
        generate_release(course_dir, names, fresh)
        for name in names:
            target = course_dir / "assignments" / name
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(fresh / name, target)
    return names


# ----------------------------------------------------------------------------------------------
# student ids from the file names LMS exports give
# ----------------------------------------------------------------------------------------------

MIN_ID_LENGTH = 4
EXTENSIONS = (".ipynb", ".json", ".txt", ".pdf", ".py", ".zip", ".html")
# A browser that downloads a file twice appends " (1)", " (2)", ... before the extension.
BROWSER_COPY = re.compile(r" \(\d{1,3}\)(?=(\.[A-Za-z0-9]{1,5})?$)")
MONTHS = {m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct",
                                      "Nov", "Dec"), start=1)}
# Each LMS's export scheme, tried in this order on the path relative to the submissions folder (a
# folder per student counts as part of the name). Named groups: id, name, late, time.
LMS_PATTERNS = [
    # Canvas: <lastfirst>_[LATE_]<user id>_<submission id>_<original name>[-<n>]
    ("Canvas", re.compile(r"^(?P<name>[^_/]+)_(?P<late>LATE_)?(?P<id>\d+)_\d+_(?P<rest>.+)$")),
    # Moodle: <Full Name>_<participant id>_assignsubmission_file_<original name> (or .../ a folder)
    ("Moodle", re.compile(r"^(?P<name>[^_/]+)_(?P<id>\d+)_assignsubmission_(?:file|onlinetext)_/?(?P<rest>.*)$")),
    # Blackboard: <Assignment>_<username>_attempt_<YYYY-MM-DD-HH-MM-SS>[_<original name>]
    ("Blackboard", re.compile(r"^(?P<assignment>[^/]*)_(?P<id>[^_/]+)_attempt_"
                              r"(?P<time>\d{4}-\d\d-\d\d-\d\d-\d\d-\d\d)(?:_(?P<rest>.*)|\.txt)?$")),
    # Brightspace (D2L): <submission id>-<user id> - <Full Name> - <Mon D, YYYY HMM AM> - <original name>
    # (or the same as a folder name, the file inside it)
    ("Brightspace", re.compile(r"^\d+-(?P<id>\d+) - (?P<name>[^/]+?) ?- (?P<time>[A-Z][a-z]{2} \d{1,2}, \d{4} "
                               r"\d{3,4} [AP]M)(?: - |/)(?P<rest>.+)$")),
    # Google Classroom (files downloaded from the assignment's Drive folder): <Full Name> - <original name>
    ("Google Classroom", re.compile(r"^(?P<name>[^\W\d_][^/\d_]*?) - (?P<rest>[^/]+)$")),
]


@dataclass
class FileName:
    """What an LMS export's file name says about its submission."""
    student_id: str | None = None
    name: str = ""                  # the student's name, where the LMS puts it in the file name
    late: bool = False              # the LMS marked the submission late (Canvas' LATE_)
    lms_time: str = ""              # the submission time written in the name (Blackboard, Brightspace), ISO
    lms: str = ""                   # which scheme matched ("" for the generic rule or --id-pattern)
    problem: str = ""               # why there is no usable id


def date_like(word: str) -> bool:
    """A year, a date or a time of day (digits with separators), not a student id."""
    if re.fullmatch(r"(19|20)\d\d", word):
        return True
    if re.fullmatch(r"(19|20)\d\d(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])(\d{4,6})?", word):
        return True
    return bool(re.fullmatch(r"\d{1,4}([-./:]\d{1,4}){1,5}", word))


def id_problem(student_id: str) -> str:
    """Why `student_id` cannot be a student id ("" if it can)."""
    if date_like(student_id):
        return f"{student_id!r} looks like a date or a time, not a student id"
    if len(student_id) < MIN_ID_LENGTH:
        return (f"{student_id!r} is too short for a student id (fewer than {MIN_ID_LENGTH} characters: "
                "a browser's duplicate number, a version?)")
    if not SAFE_ID.match(student_id) or student_id.endswith("-report"):
        return f"{student_id!r} cannot be used as a student id (letters, digits, '_', '.', '-')"
    return ""


def _slug(name: str) -> str:
    """`José García` -> `jose_garcia`: an id made from a name (Google Classroom gives no number)."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return "_".join(w.lower() for w in re.split(r"[^A-Za-z0-9]+", ascii_name) if w)


def _lms_time(text: str) -> str:
    m = re.fullmatch(r"(\d{4})-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)", text)
    if m:
        return "{}-{}-{}T{}:{}:{}".format(*m.groups())
    m = re.fullmatch(r"([A-Z][a-z]{2}) (\d{1,2}), (\d{4}) (\d{1,2})(\d\d) ([AP])M", text)
    if m and m.group(1) in MONTHS:
        hour = int(m.group(4)) % 12 + (12 if m.group(6) == "P" else 0)
        return f"{m.group(3)}-{MONTHS[m.group(1)]:02d}-{int(m.group(2)):02d}T{hour:02d}:{m.group(5)}:00"
    return ""


def parse_file_name(relative_path: str, assignment: str, pattern: str | None = None) -> FileName:
    """Read the student id (and name, late flag, submission time) from an LMS export's file name.

    With `pattern` (a regular expression with one group, searched in the path relative to the
    submissions folder) that group. Otherwise the first of LMS_PATTERNS that matches (Canvas, Moodle,
    Blackboard, Brightspace, Google Classroom), else the generic rule: the first word of the name that
    contains a digit and is neither date-like nor too short, once the assignment's name, the extension
    and a browser's " (1)" are removed. An id that is too short or looks like a date is refused
    (`problem` says why), never guessed.
    """
    path = BROWSER_COPY.sub("", relative_path)
    path = "/".join(BROWSER_COPY.sub("", part) for part in path.split("/"))
    if pattern:
        match = re.search(pattern, relative_path)
        if not match or not match.groups() or not match.group(1):
            return FileName(problem=f"--id-pattern {pattern!r} does not match this file name")
        sid = match.group(1)
        return FileName(sid, problem=id_problem(sid)) if not id_problem(sid) else FileName(problem=id_problem(sid))
    for lms, regex in LMS_PATTERNS:
        match = regex.match(path)
        if not match:
            continue
        groups = match.groupdict()
        name = (groups.get("name") or "").strip()
        if lms == "Google Classroom" and (assignment.lower() in name.lower()
                                          or assignment.lower() not in (groups.get("rest") or "").lower()):
            continue                # "energy - Copy.ipynb": no name before the assignment's file name
        sid = groups.get("id") or _slug(name)
        found = FileName(None, name, bool(groups.get("late")), _lms_time(groups.get("time") or ""), lms)
        if problem := id_problem(sid):
            found.problem = f"{problem} (read as a {lms} export)"
        else:
            found.student_id = sid
        return found
    stem = path
    for ext in EXTENSIONS:
        if stem.lower().endswith(ext):
            stem = stem[: -len(ext)]
    stem = re.sub(re.escape(assignment), " ", stem, flags=re.IGNORECASE)
    refused = []
    for word in re.split(r"[^A-Za-z0-9]+", stem):
        if any(ch.isdigit() for ch in word):
            if problem := id_problem(word):
                refused.append(problem)
            else:
                return FileName(word)
    if refused:
        more = f" (and {len(refused) - 1} more word(s) of the name that cannot be ids)" if len(refused) > 1 else ""
        return FileName(problem=refused[0] + more)
    return FileName(problem="no student id found in the file name")


def student_id_from_name(relative_path: str, assignment: str, pattern: str | None = None) -> str | None:
    """The student id in an LMS file name, or None (see parse_file_name)."""
    return parse_file_name(relative_path, assignment, pattern).student_id


# ----------------------------------------------------------------------------------------------
# collect and grade
# ----------------------------------------------------------------------------------------------

@dataclass
class Submission:
    file: str                       # path relative to the submissions folder
    student_id: str = ""
    name: str = ""                  # the student's name, where the file name gives it
    late: bool = False              # the LMS marked it late (Canvas' LATE_)
    submitted_at: str = ""          # the time in the LMS file name, else the file's modification time (UTC)
    status: str = "pending"
    score: float | None = None
    max_score: float | None = None
    manual_max: float | None = None
    version: str = ""
    notes: list[str] = field(default_factory=list)
    notebook: dict | None = None    # the parsed notebook, when it is one
    sanitized: bool = False         # its grader metadata was repaired before filing

    def row(self) -> dict[str, str]:
        return {"student_id": self.student_id, "name": self.name, "file": self.file, "status": self.status,
                "late": "yes" if self.late else "", "submitted_at": self.submitted_at,
                "autograded_score": _number(self.score), "autograded_max": _number(self.max_score),
                "manual_max": _number(self.manual_max), "course_version": self.version,
                "notes": "; ".join(self.notes)}


def _number(x) -> str:
    return "" if x is None or x == "" else f"{float(x):g}"


def _grade_cells(nb: dict) -> dict[str, dict]:
    cells = {}
    for cell in nb.get("cells", []):
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("grade_id"):
            cells[meta["grade_id"]] = meta
    return cells


def _inspect(path: Path, sub: Submission, release_nb: dict, course_version: str) -> None:
    """Decide whether a file can be graded; fills sub.status / notes / notebook."""
    import nbformat

    if path.stat().st_size == 0:
        sub.status, sub.score = "empty file", 0.0
        sub.notes.append("the file is empty (0 bytes)")
        return
    is_ipynb = path.suffix.lower() == ".ipynb"
    try:
        text = path.read_text(encoding="utf-8")
        raw = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        sub.score = 0.0
        if is_ipynb:
            sub.status = "broken notebook"
            sub.notes.append(f"the file is not valid notebook JSON ({type(err).__name__}: {str(err)[:80]})")
        else:
            sub.status = "not a notebook"
            sub.notes.append(f"a {path.suffix or 'extensionless'} file was submitted instead of a .ipynb notebook")
        return
    if not isinstance(raw, dict) or "cells" not in raw or "nbformat" not in raw:
        sub.status, sub.score = ("broken notebook" if is_ipynb else "not a notebook"), 0.0
        sub.notes.append("the file is JSON but not a Jupyter notebook")
        return
    try:
        nb = nbformat.reads(text, as_version=4)
        nbformat.validate(nb)
    except Exception as err:  # nbformat raises several types for malformed notebooks
        sub.status, sub.score = "broken notebook", 0.0
        sub.notes.append(f"the notebook does not follow the notebook format ({str(err).splitlines()[0][:80]})")
        return
    if not nb.cells:
        sub.status, sub.score = "empty notebook", 0.0
        sub.notes.append("the notebook has no cells")
        return
    sub.notebook = nb
    stamp = nb.metadata.get("slmcourse", {})
    sub.version = str(stamp.get("version", ""))
    if not stamp:
        sub.notes.append("no course version stamp: not made from this course's release?")
    else:
        if stamp.get("assignment") not in (None, release_nb["metadata"]["slmcourse"]["assignment"]):
            sub.notes.append(f"this is the notebook of assignment {stamp.get('assignment')!r}")
        if sub.version != course_version:
            sub.notes.append(f"made from course version {sub.version}, graded with version {course_version}: "
                             "check cells the grader restored")
    expected, found = _grade_cells(release_nb), _grade_cells(nb)
    missing = [g for g in expected if g not in found]
    unknown = [g for g in found if g not in expected]
    if missing:
        sub.notes.append(f"missing or renamed cells restored by the grader: {', '.join(missing)}")
    if unknown:
        sub.notes.append(f"cells with unknown ids (graded as ordinary cells): {', '.join(unknown)}")
    sub.sanitized = _sanitize(nb, set(expected))


def _sanitize(nb, known: set[str]) -> bool:
    """Turn cells nbgrader would choke on into ordinary cells; True if anything changed.

    nbgrader 0.9 crashes (KeyError 'grade_id') on a grade cell whose id is not in the gradebook - a
    renamed cell - and on nbgrader metadata without an id; a copied cell repeats an id. Such cells keep
    their content (the student's code still runs) but lose the grader's metadata; the cells the
    grader knows are restored from the release by `OverwriteCells.add_missing_cells`.
    """
    changed, seen = False, set()
    for cell in nb.cells:
        meta = cell.get("metadata", {})
        if "nbgrader" not in meta:
            continue
        gid = meta["nbgrader"].get("grade_id")
        if gid not in known or gid in seen:
            del meta["nbgrader"]
            changed = True
        else:
            seen.add(gid)
    return changed


def _choose(subs: list[Submission], folder: Path) -> Submission:
    """Several files claim one student id: grade the newest notebook (time from the LMS name, else the file),
    report the rest."""
    ranked = sorted(subs, key=lambda s: (s.notebook is not None, s.submitted_at, s.file))
    chosen = ranked[-1]
    for other in ranked[:-1]:
        other.status, other.score = "duplicate", None
        other.notes.append(f"student {other.student_id} also submitted {chosen.file}, which was graded instead")
    return chosen


def _lost_points(gb, assignment: str, student: str, autograded_nb: Path) -> list[str]:
    timeouts, violations = set(), {}
    if autograded_nb.is_file():
        for cell in _read_json(autograded_nb).get("cells", []):
            gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
            if gid and any(o.get("ename") == "CellTimeoutError" for o in cell.get("outputs", [])):
                timeouts.add(gid)
            for o in cell.get("outputs", []):       # the hidden tests' checks name what was gamed
                if gid and o.get("output_type") == "error" and o.get("ename") in CHECKER_ERRORS:
                    violations[gid] = f"{o['ename']}: {str(o.get('evalue', ''))[:200]}"
    notes = []
    submission = gb.find_submission(assignment, student)
    for nb in submission.notebooks:
        for grade in sorted(nb.grades, key=lambda g: g.name):
            if grade.cell_type == "code" and grade.auto_score is not None and grade.auto_score < grade.max_score:
                why = " timed out" if grade.name in timeouts else ""
                why += f" ({violations[grade.name]})" if grade.name in violations else ""
                notes.append(f"{grade.name} {grade.auto_score:g}/{grade.max_score:g}{why}")
    return [f"lost points: {', '.join(notes)}"] if notes else []


def _html_page(title: str, body: str) -> str:
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title></head>\n"
            f"<body>\n<h1>{html.escape(title)}</h1>\n{body}\n</body></html>\n")


def submission_limits(course_dir: Path, assignment: str):
    """The sandbox's limits for one assignment: memory from course/BUDGET.md's measured peak + 1 GiB."""
    import sandbox

    limits = sandbox.Limits()
    budget = course_dir / "course" / "BUDGET.md"
    if budget.is_file():
        row = re.search(rf"^\| solutions/{re.escape(assignment)}/\S+ \| [\d.]+ \| (\d+) \|", budget.read_text(),
                        re.MULTILINE)
        if row:
            limits.memory_bytes = (int(row.group(1)) + 1024) * 1024 ** 2
    return limits


def autograde_one(course_dir: Path, assignment: str, student_id: str, sandboxed: bool, limits,
                  wall_seconds: int = SUBMISSION_WALL_SECONDS) -> str | None:
    """`nbgrader autograde` of one student; with `sandboxed`, its kernel runs in the bubblewrap sandbox.

    Returns None when nbgrader finished, else why it did not: the wall-time limit stopped it (a hung or
    killed kernel: nbclient may wait forever for a kernel the memory cgroup killed), or nbgrader itself
    failed. The submission is then reported as "grading failed" and the batch goes on. nbgrader runs
    in its own session, so everything it started is killed with it; its own address space is limited
    too (endless output piles up in nbgrader's memory, not the kernel's).
    """
    import resource
    import signal

    import sandbox

    args = ["autograde", assignment, f"--student={student_id}", "--force"]
    env = _environment()
    box = None
    if sandboxed:
        box = sandbox.prepare(course_dir / "autograded" / student_id / assignment, limits, label=student_id)
        args += box.nbgrader_arguments()
        env = box.environment(env)
    address_space = limits.memory_bytes + sandbox.ADDRESS_SPACE_MARGIN

    def limit_nbgrader():                    # runs in the child before nbgrader starts
        resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))

    with tempfile.TemporaryFile(mode="w+") as log:
        process = subprocess.Popen([sys.executable, "-m", "nbgrader", *args], cwd=course_dir, env=env,
                                   stdout=log, stderr=subprocess.STDOUT, text=True, start_new_session=True,
                                   preexec_fn=limit_nbgrader)
        try:
            code = process.wait(timeout=wall_seconds)
            why = None if code == 0 else f"nbgrader stopped with exit status {code}"
        except subprocess.TimeoutExpired:
            why = f"stopped after the {wall_seconds:g} s time limit per submission (hung or killed kernel?)"
        finally:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            process.wait()
            if box is not None:
                box.cleanup()
        if why and "MemoryError" in _tail(log):
            why += "; the grader ran out of memory (endless output?)"
    return why


def _tail(fh, size: int = 20000) -> str:
    fh.seek(0, os.SEEK_END)
    fh.seek(max(0, fh.tell() - size))
    return fh.read()


# What a submission has no business using; each found in its code becomes a "review:" note in grades.csv
# (the in-process checks can be tampered with by a determined student: see docs/instructors.md).
SUSPICIOUS = {
    "the notebook's kernel machinery": ("get_ipython", "input_transformers", "set_custom_exc", "showtraceback",
                                        "IPython", "ipykernel"),
    "the grader's checks or profiler": ("gradecheck", "setprofile", "settrace", "sys.monitoring", "gc.get_",
                                        "__code__", "__globals__", "ctypes", "builtins", "sys.modules",
                                        "__torch_function__", "__torch_dispatch__", "TorchDispatchMode", "torch.library"),
    "dynamic code": ("exec(", "eval(", "compile(", "__import__", "importlib", "base64", "marshal", "pickle"),
    "processes or the file system": ("subprocess", "os.system", "os.fork", "os.kill", "multiprocessing",
                                     "os.walk", "os.listdir", "glob", "shutil", "open(", "Path(", "socket",
                                     "solutions", "gradebook", "autograded", "submitted", "../"),
    "the hidden tests' references": ("slmcourse.attention", "scaled_dot_product_attention", "slmcourse.lora",
                                     "slmcourse.quant", "slmcourse.planner", "peft", "torch.ao."),
}
CHECKER_ERRORS = ("ForbiddenCall", "NotARealResult", "CheckerTampered")


def suspicious_code(nb: dict, release_nb: dict) -> list[str]:
    """What in the student's own code looks like gaming the grader (for the instructor to review).

    Only code the student wrote counts: cells that differ from every code cell of the release.
    """
    def text(cell):
        return "".join(cell.get("source", ""))
    given = {text(c) for c in release_nb.get("cells", []) if c.get("cell_type") == "code"}
    code = "\n".join(text(c) for c in nb.get("cells", []) if c.get("cell_type") == "code" and text(c) not in given)
    found = []
    for what, needles in SUSPICIOUS.items():
        hits = sorted({n.rstrip("(") for n in needles if n in code})
        if hits:
            found.append(f"{what} ({', '.join(hits)})")
    return found

def _file_time(path: Path) -> str:
    return datetime.fromtimestamp(path.stat().st_mtime, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def reports_dir(course_dir: Path, assignment: str) -> Path:
    """Where an assignment's reports live: one folder per batch, history.csv, all/ and export/."""
    return Path(course_dir) / "reports" / assignment


def _new_batch_folder(parent: Path) -> Path:
    stamp = datetime.now().strftime("%Y-%m-%d_%H%M%S")
    folder, n = parent / stamp, 1
    while folder.exists():
        n += 1
        folder = parent / f"{stamp}-{n}"
    return folder


def _set_aside(folder: Path, log) -> None:
    """An earlier report in the --out folder is renamed, never deleted."""
    if folder.exists() and any(folder.iterdir()):
        stamp = datetime.fromtimestamp(folder.stat().st_mtime).strftime("%Y-%m-%d_%H%M%S")
        target, n = folder.with_name(f"{folder.name}.{stamp}"), 1
        while target.exists():
            n += 1
            target = folder.with_name(f"{folder.name}.{stamp}-{n}")
        folder.rename(target)
        log(f"the earlier report in {folder} is kept as {target}")


def print_mapping(subs: list[Submission], log=print) -> None:
    """The file -> student id mapping, printed before anything is graded."""
    log("file -> student id:")
    width = max((len(s.file) for s in subs), default=0)
    for sub in subs:
        if sub.student_id:
            extra = [x for x in (sub.notes[0] if sub.notes and sub.notes[0].startswith("read as") else "",
                                 "LATE" if sub.late else "", sub.submitted_at) if x]
            log(f"  {sub.file:{width}s} -> {sub.student_id}" + (f"  ({', '.join(extra)})" if extra else ""))
        else:
            log(f"  {sub.file:{width}s} -> (none: {'; '.join(sub.notes)})")


def _scan(submissions: Path, assignment: str, id_pattern: str | None) -> list[Submission]:
    subs = []
    for path in sorted(p for p in submissions.rglob("*") if p.is_file()):
        rel = path.relative_to(submissions).as_posix()
        if path.name in IGNORED_FILES or path.name.startswith(".") or "__MACOSX" in path.parts \
                or ".ipynb_checkpoints" in path.parts:
            continue
        found = parse_file_name(rel, assignment, id_pattern)
        if found.lms == "Blackboard" and path.suffix.lower() == ".txt" and not id_pattern:
            continue                    # Blackboard's receipt of each attempt, beside the submitted file
        sub = Submission(file=rel, name=found.name, late=found.late,
                         submitted_at=found.lms_time or _file_time(path))
        subs.append(sub)
        if found.lms:
            sub.notes.append(f"read as {found.lms} export")
        if not found.student_id:
            sub.status = "no student id"
            sub.notes.append(f"{found.problem}: rename the file or use --id-pattern")
            continue
        sub.student_id = found.student_id
    return subs


def collect_and_grade(assignment: str, submissions: Path, course_dir: Path = ROOT, out: Path | None = None,
                      id_pattern: str | None = None, log=print, sandboxed: bool = True,
                      time_limit: float = SUBMISSION_WALL_SECONDS, memory_mib: int | None = None,
                      dry_run: bool = False, kind: str = "lms") -> list[Submission]:
    """File, autograde and report one batch of submissions; returns one Submission per file.

    Prints the file -> student id mapping first; with `dry_run` stops there (nothing is written).
    Each submission's code runs in the grading sandbox (utils/sandbox.py). Without one (no bubblewrap,
    not Linux) this refuses, unless `sandboxed=False` (`--no-sandbox`): then student code runs with the
    instructor's rights and can read the solutions and change any file the instructor can.
    The batch's report goes to `out` (default reports/<assignment>/<date>_<time>/); an earlier report
    there is renamed, never deleted; the batch is added to reports/<assignment>/history.csv and the
    merged report reports/<assignment>/all/ is rebuilt from the gradebook.
    """
    import sandbox

    course_dir, submissions = Path(course_dir).resolve(), Path(submissions).resolve()
    _check_assignment(course_dir, assignment)
    if not submissions.is_dir():
        raise GradingError(f"{submissions} is not a folder of submissions")
    if id_pattern:
        try:
            if re.compile(id_pattern).groups < 1:
                raise GradingError(f"--id-pattern {id_pattern!r} needs one group (...) around the id")
        except re.error as err:
            raise GradingError(f"--id-pattern {id_pattern!r} is not a regular expression: {err}") from None
    out = Path(out).resolve() if out else _new_batch_folder(reports_dir(course_dir, assignment))
    if out.is_relative_to(submissions) or submissions.is_relative_to(out):
        raise GradingError("--out must not be inside the submissions folder (or contain it)")

    # 1. read every file name, and show the mapping before anything is graded
    subs = _scan(submissions, assignment, id_pattern)
    by_id: dict[str, list[Submission]] = {}
    for sub in subs:
        if sub.student_id:
            by_id.setdefault(sub.student_id, []).append(sub)
    print_mapping(subs, log)
    for sid, group in by_id.items():
        if len(group) > 1:
            log(f"  several files for {sid}: {', '.join(s.file for s in group)} (the newest notebook is graded)")
    if dry_run:
        log("dry run: nothing was filed, graded or written")
        return subs
    if sandboxed and (problem := sandbox.sandbox_problem()):
        raise GradingError(f"cannot sandbox the submissions: {problem}.\nStudent code would run with your rights "
                           "(it could read solutions/ and change the gradebook or other students' files). Install "
                           "bubblewrap, or pass --no-sandbox to grade anyway at that risk.")

    from nbgrader.api import Gradebook, MissingEntry

    import slmcourse

    # 2. the gradebook must know the assignment as it is now: generate its release into a scratch folder
    with tempfile.TemporaryDirectory(prefix="slm-grade-release-") as scratch:
        nbgrader(course_dir, "generate_assignment", assignment, "--force",
                 f"--CourseDirectory.release_directory={scratch}")
        release_nb = _read_json(Path(scratch) / assignment / f"{assignment}.ipynb")
    course_version = slmcourse.__version__
    for sub in subs:
        if sub.student_id:
            _inspect(submissions / sub.file, sub, release_nb, course_version)
    chosen = {sid: (group[0] if len(group) == 1 else _choose(group, submissions)) for sid, group in by_id.items()}

    # 3. file the gradable ones into submitted/<id>/<assignment>/<assignment>.ipynb (only those students)
    to_grade = [s for s in chosen.values() if s.notebook is not None]
    changed: set[str] = set()           # students whose new file differs from the one graded before
    for sub in to_grade:
        folder = course_dir / "submitted" / sub.student_id / assignment
        before = folder / f"{assignment}.ipynb"
        if before.is_file() and kind == "lms" and before.read_bytes() != (submissions / sub.file).read_bytes():
            changed.add(sub.student_id)
        if folder.exists():
            shutil.rmtree(folder)       # nbgrader's copy of this student's earlier file (the LMS keeps the original)
        folder.mkdir(parents=True)
        if sub.sanitized:
            import nbformat
            nbformat.write(sub.notebook, folder / f"{assignment}.ipynb")
        else:
            shutil.copyfile(submissions / sub.file, folder / f"{assignment}.ipynb")
        for step in ("autograded", "feedback"):
            shutil.rmtree(course_dir / step / sub.student_id / assignment, ignore_errors=True)

    # 4. autograde each student on their own, the kernel inside the sandbox (utils/sandbox.py)
    if graded_ids := sorted(s.student_id for s in to_grade):
        log(f"autograding {len(graded_ids)} submission(s) of {assignment} "
            f"({'sandboxed' if sandboxed else 'NOT sandboxed'}) ...")
    limits = submission_limits(course_dir, assignment)
    if memory_mib:
        limits.memory_bytes = int(memory_mib) * 1024 ** 2
    failed: dict[str, str] = {}
    for sid in graded_ids:
        why = autograde_one(course_dir, assignment, sid, sandboxed, limits, time_limit)
        if why:
            failed[sid] = why
            log(f"  {sid}: grading failed: {why}")
            # whatever a stopped run left (a half-written gradebook entry, a copied notebook) is not a grade
            shutil.rmtree(course_dir / "autograded" / sid / assignment, ignore_errors=True)
        else:
            nbgrader(course_dir, "generate_feedback", assignment, f"--student={sid}", "--force", check=False)

    # 5. read the grades
    with Gradebook(_db_url(course_dir)) as gb:
        a = gb.find_assignment(assignment)
        max_code = float(sum(nb.max_code_score for nb in a.notebooks))
        max_written = float(sum(nb.max_written_score for nb in a.notebooks))
        for sub in subs:
            if sub.status == "duplicate" or not sub.student_id:
                continue
            sub.max_score = max_code
            sub.manual_max = max_written
            if sub.notebook is None:
                continue
            autograded = course_dir / "autograded" / sub.student_id / assignment / f"{assignment}.ipynb"
            if sub.student_id in failed:
                sub.status, sub.score = "grading failed", 0.0
                sub.notes.append(failed[sub.student_id])
                sub.notes.extend(f"review: the code uses {w}" for w in suspicious_code(sub.notebook, release_nb))
                continue
            try:
                if not autograded.is_file():
                    raise MissingEntry()
                submission = gb.find_submission(assignment, sub.student_id)
            except MissingEntry:
                sub.status, sub.score = "grading failed", 0.0
                sub.notes.append("nbgrader could not grade this notebook (see `nbgrader autograde` output)")
                continue
            sub.status, sub.score = "graded", float(submission.code_score)
            sub.notes.extend(_lost_points(gb, assignment, sub.student_id, autograded))
            sub.notes.extend(f"review: the code uses {w}" for w in suspicious_code(sub.notebook, release_nb))
            if max_written:
                sub.notes.append(f"{max_written:g} manual points pending")
        for sid in sorted(changed - set(failed)):
            # a new file: the manual grades given to the old one do not apply to it (nbgrader would keep them)
            removed = 0
            for nb in gb.find_submission(assignment, sid).notebooks:
                for g in nb.grades:
                    if g.manual_score is not None:
                        g.manual_score, g.needs_manual_grade = None, g.auto_score is None
                        removed += 1
            gb.db.commit()
            if removed:
                next(s for s in to_grade if s.student_id == sid).notes.append(
                    "a new file: the manual grades of the earlier one were removed")
                nbgrader(course_dir, "generate_feedback", assignment, f"--student={sid}", "--force", check=False)
        for sid in graded_ids:
            if sid not in failed:
                _mark_ungraded_answers(gb, course_dir, assignment, sid)

    # 6. this batch's report (grades.csv and one feedback page per student), its history, the merged report
    _set_aside(out, log)
    (out / "feedback").mkdir(parents=True)
    rows = sorted(subs, key=lambda s: (s.student_id == "", s.student_id, s.file))
    _write_csv(out / "grades.csv", CSV_FIELDS, [s.row() for s in rows])
    for sub in rows:
        if sub.student_id and sub.status != "duplicate":
            _write_page(course_dir, assignment, sub.row(), out / "feedback" / f"{sub.student_id}.html")
    log(f"wrote {out / 'grades.csv'} and {len([r for r in rows if r.student_id and r.status != 'duplicate'])} "
        f"feedback page(s) in {out / 'feedback'}")
    _append_history(course_dir, assignment, [s.row() for s in rows], out.name, kind)
    merged = rebuild_report(course_dir, assignment)
    log(f"the merged report of every batch: {merged}")
    return subs


def grade_collected(assignment: str, course_dir: Path = ROOT, out: Path | None = None,
                    students: list[str] | None = None, **options) -> list[Submission]:
    """Grade what is filed as submitted/<student>/<assignment>/<assignment>.ipynb (`nbgrader collect` on a
    JupyterHub, or earlier collect-and-grade batches): everyone, or only `students`.

    The same path as collect-and-grade (each submission in the sandbox, grades.csv, feedback pages), with
    the filed notebooks as the batch: they are copied out first, so filing them again changes nothing.
    This is how to regrade after fixing a test (everyone) or one student (`students=[id]`).
    """
    course_dir = Path(course_dir).resolve()
    _check_assignment(course_dir, assignment)
    found = sorted((course_dir / "submitted").glob(f"*/{assignment}/{assignment}.ipynb"))
    if students:
        unknown = sorted(set(students) - {nb.parents[1].name for nb in found})
        if unknown:
            raise GradingError(f"no submission of {assignment} is filed for {', '.join(unknown)} "
                               f"(submitted/<id>/{assignment}/{assignment}.ipynb)")
        found = [nb for nb in found if nb.parents[1].name in students]
    with tempfile.TemporaryDirectory(prefix="slm-collected-") as batch:
        for nb in found:
            student = nb.parents[1].name
            (Path(batch) / student).mkdir()
            shutil.copy2(nb, Path(batch) / student / f"{assignment}.ipynb")
        return collect_and_grade(assignment, Path(batch), course_dir, out, id_pattern=r"^([^/]+)/",
                                 kind="collected", **options)


# ----------------------------------------------------------------------------------------------
# reports: pages, history, the merged report, the final export
# ----------------------------------------------------------------------------------------------

HISTORY_FIELDS = CSV_FIELDS + ["batch", "kind"]
EXPORT_FIELDS = ["student_id", "name", "file", "status", "late", "submitted_at", "autograded", "autograded_max",
                 "manual", "manual_max", "total", "max", "batch", "notes"]
NOT_GRADED = "not graded yet"


def _db_url(course_dir: Path) -> str:
    return f"sqlite:///{Path(course_dir) / 'gradebook.db'}"


def _write_csv(path: Path, fields: list[str], rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields, lineterminator="\n", extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def _read_csv(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _append_history(course_dir: Path, assignment: str, rows: list[dict], batch: str, kind: str) -> None:
    """reports/<assignment>/history.csv: every batch's rows, appended, never rewritten."""
    path = reports_dir(course_dir, assignment) / "history.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.is_file()
    with open(path, "a", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=HISTORY_FIELDS, lineterminator="\n", extrasaction="ignore")
        if new:
            writer.writeheader()
        for row in rows:
            writer.writerow({**row, "batch": batch, "kind": kind})


def _written_grades(gb, assignment: str, student: str) -> tuple[float, float, float, list[str]]:
    """(autograded, manual so far, manual max, ids of written answers not graded yet) from the gradebook."""
    auto = manual = manual_max = 0.0
    pending = []
    for nb in gb.find_submission(assignment, student).notebooks:
        for g in nb.grades:
            if g.cell_type == "markdown":
                manual_max += float(g.max_score)
                if g.manual_score is None and g.auto_score is None:
                    pending.append(g.name)
                else:
                    manual += float(g.score)
            else:
                auto += float(g.score)
    return auto, manual, manual_max, sorted(pending)


def _mark_ungraded_answers(gb, course_dir: Path, assignment: str, student: str) -> None:
    """nbgrader's feedback page shows a written answer nobody graded yet as 0 points: say so instead."""
    page = course_dir / "feedback" / student / assignment / f"{assignment}.html"
    if not page.is_file():
        return
    _, _, _, pending = _written_grades(gb, assignment, student)
    text = page.read_text(encoding="utf-8")
    for gid in pending:
        text = re.sub(rf'(<a href="#{re.escape(gid)}">[^<]*</a> \(Score: )[\d.]+( / )', rf"\g<1>{NOT_GRADED}\2",
                      text, count=1)
        text = re.sub(rf'(<a name="{re.escape(gid)}"></a>.*?Score: )[\d.]+( / )', rf"\g<1>{NOT_GRADED}\2", text,
                      count=1, flags=re.DOTALL)
    if pending:
        text = re.sub(r"(<h4>[^<]*\(Score)(: [\d.]+ / [\d.]+)\)</h4>",
                      rf"\1 so far\2; written answers {NOT_GRADED})</h4>", text, count=1)
    page.write_text(text, encoding="utf-8")


def _write_page(course_dir: Path, assignment: str, row: dict, page: Path) -> None:
    """One student's feedback page: nbgrader's (hidden tests removed) or why the file was not graded."""
    made = course_dir / "feedback" / row["student_id"] / assignment / f"{assignment}.html"
    page.parent.mkdir(parents=True, exist_ok=True)
    if row["status"] == "graded" and made.is_file():
        shutil.copyfile(made, page)
        return
    body = (f"<p>Your submission <code>{html.escape(row['file'])}</code> could not be graded: "
            f"<b>{html.escape(row['status'])}</b>.</p>\n<p>{html.escape(row['notes'])}</p>\n"
            f"<p>Autograded score: 0 / {row['autograded_max']}. Please submit the notebook "
            f"<code>{assignment}.ipynb</code> from the course's assignments folder.</p>")
    page.write_text(_html_page(f"{assignment}: feedback for {row['student_id']}", body), encoding="utf-8")


def merged_rows(course_dir: Path, assignment: str) -> list[dict]:
    """One row per student over every batch (the latest file of each student), scores from the gradebook.

    A regrade from submitted/ (`autograde`) keeps the name, file, late flag and time of the LMS batch the
    file came from. Written answers nobody graded yet are "not graded yet" (and no total), not 0.
    """
    from nbgrader.api import Gradebook, MissingEntry

    history = _read_csv(reports_dir(course_dir, assignment) / "history.csv")
    latest: dict[str, dict] = {}
    no_id: list[dict] = []
    for row in history:
        if row["status"] == "duplicate":
            continue
        if not row["student_id"]:
            no_id.append(row)
            continue
        before = latest.get(row["student_id"])
        if row["kind"] == "collected" and before:
            row = {**row, **{k: before[k] for k in ("name", "file", "late", "submitted_at")}}
        latest[row["student_id"]] = row
    rows = []
    with Gradebook(_db_url(course_dir)) as gb:
        try:
            a = gb.find_assignment(assignment)
        except MissingEntry:
            a = None
        code_max = float(sum(nb.max_code_score for nb in a.notebooks)) if a else 0.0
        written_max = float(sum(nb.max_written_score for nb in a.notebooks)) if a else 0.0
        if a:
            for s in a.submissions:
                latest.setdefault(s.student.id, {"student_id": s.student.id, "name": "", "file": "", "late": "",
                                                 "submitted_at": "", "status": "graded", "batch": "",
                                                 "notes": "graded outside grade.py"})
        for sid, row in sorted(latest.items()):
            out = {k: row.get(k, "") for k in EXPORT_FIELDS}
            out.update(autograded_max=_number(code_max), manual_max=_number(written_max),
                       max=_number(code_max + written_max))
            notes = [n for n in row.get("notes", "").split("; ") if n and not n.endswith("manual points pending")]
            if row["status"] == "graded":
                try:
                    auto, manual, _, pending = _written_grades(gb, assignment, sid)
                except MissingEntry:
                    out.update(status="grading failed", autograded="0", manual="", total="0")
                    notes.append("not in the gradebook")
                else:
                    out["autograded"] = _number(auto)
                    if pending:
                        out.update(manual=NOT_GRADED, total="")
                        notes.append(f"written answers {NOT_GRADED}: {', '.join(pending)}")
                    else:
                        out.update(manual=_number(manual), total=_number(auto + manual))
            else:          # a file that could not be graded: 0 points, nothing to grade by hand
                out.update(autograded="0", manual="0", total="0")
            out["notes"] = "; ".join(notes)
            rows.append(out)
    for row in no_id:
        rows.append({**{k: row.get(k, "") for k in EXPORT_FIELDS}, "autograded": "", "manual": "", "total": ""})
    return rows


def rebuild_report(course_dir: Path, assignment: str) -> Path:
    """reports/<assignment>/all/: grades.csv and a feedback page per student, over every batch, from the
    gradebook as it is now (manual grades and comments included). Rebuilt in full every time."""
    folder = reports_dir(course_dir, assignment) / "all"
    rows = merged_rows(course_dir, assignment)
    _write_csv(folder / "grades.csv", EXPORT_FIELDS, rows)
    for row in rows:
        if row["student_id"]:
            _write_page(course_dir, assignment, row, folder / "feedback" / f"{row['student_id']}.html")
    return folder


def _canvas_rows(rows: list[dict], column: str) -> list[dict]:
    return [{"Student": r["name"], "ID": r["student_id"], "SIS User ID": "", "SIS Login ID": "", "Section": "",
             column: r["total"]} for r in rows if r["student_id"]]


def _moodle_rows(rows: list[dict]) -> list[dict]:
    return [{"Identifier": f"Participant {r['student_id']}", "Full name": r["name"], "Email address": "",
             "Status": r["status"], "Grade": r["total"], "Maximum Grade": r["max"], "Grade can be changed": "Yes",
             "Last modified (submission)": r["submitted_at"], "Last modified (grade)": "",
             "Feedback comments": ""} for r in rows if r["student_id"]]   # students read it: notes are yours


CANVAS_FIELDS = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
MOODLE_FIELDS = ["Identifier", "Full name", "Email address", "Status", "Grade", "Maximum Grade",
                 "Grade can be changed", "Last modified (submission)", "Last modified (grade)", "Feedback comments"]


def refresh_feedback(course_dir: Path, assignment: str) -> list[str]:
    """nbgrader's feedback/<id>/<assignment>/ pages of every graded student made again from the gradebook
    (manual scores and comments included; written answers nobody graded yet say so); returns the ids."""
    from nbgrader.api import Gradebook

    course_dir = Path(course_dir).resolve()
    graded = sorted(p.parents[1].name for p in (course_dir / "autograded").glob(f"*/{assignment}/{assignment}.ipynb"))
    if graded:
        nbgrader(course_dir, "generate_feedback", assignment, "--force", check=False)
        with Gradebook(_db_url(course_dir)) as gb:
            for sid in graded:
                _mark_ungraded_answers(gb, course_dir, assignment, sid)
    return graded


def export(assignment: str, course_dir: Path = ROOT, out: Path | None = None, canvas_column: str | None = None,
           log=print) -> Path:
    """The final export, after manual grading: refreshes nbgrader's feedback and the merged report with the
    manual scores and comments, and writes grades.csv, canvas.csv and moodle.csv into `out`
    (default reports/<assignment>/export/)."""
    course_dir = Path(course_dir).resolve()
    _check_assignment(course_dir, assignment)
    if not (course_dir / "gradebook.db").is_file():
        raise GradingError(f"there is no gradebook in {course_dir}: grade a batch first")
    refresh_feedback(course_dir, assignment)
    report = rebuild_report(course_dir, assignment)
    rows = merged_rows(course_dir, assignment)
    out = Path(out).resolve() if out else reports_dir(course_dir, assignment) / "export"
    column = canvas_column or assignment
    _write_csv(out / "grades.csv", EXPORT_FIELDS, rows)
    _write_csv(out / "canvas.csv", CANVAS_FIELDS + [column], _canvas_rows(rows, column))
    _write_csv(out / "moodle.csv", MOODLE_FIELDS, _moodle_rows(rows))
    pending = [r["student_id"] for r in rows if r["manual"] == NOT_GRADED]
    log(f"wrote {out / 'grades.csv'}, canvas.csv and moodle.csv; feedback pages with manual grades in "
        f"{report / 'feedback'}")
    if pending:
        log(f"warning: written answers not graded yet for {', '.join(pending)}: their total is left empty "
            "(grade them in the Formgrader, then export again)")
    return out


# ----------------------------------------------------------------------------------------------
# command line: one entry per subcommand in COMMANDS (name -> help, arguments, run)
# ----------------------------------------------------------------------------------------------

def _points(course_dir: Path, name: str) -> str:
    meta = _read_json(course_dir / "solutions" / name / f"{name}.ipynb")["metadata"].get("slmcourse", {})
    auto, manual = meta.get("points_autograded"), meta.get("points_manual")
    return f"{auto} autograded + {manual} manual" if auto is not None else "?"


def _list_args(p) -> None:
    pass


def _list(args, course_dir: Path) -> int:
    for name in assignment_names(course_dir):
        state = "up to date" if not release_differences(course_dir, [name]) else "OUT OF DATE"
        print(f"{name:22s} {_points(course_dir, name):26s} release {state}")
    return 0


def _release_args(p) -> None:
    p.add_argument("assignments", nargs="*", help="default: all")
    p.add_argument("--check", action="store_true", help="change nothing; exit 1 if assignments/ is out of date")


def _release(args, course_dir: Path) -> int:
    if args.check:
        problems = release_differences(course_dir, args.assignments or None)
        for problem in problems:
            print(problem)
        if problems:
            print("assignments/ is out of date: run `python utils/grade.py release` and commit it")
            return 1
        print("assignments/ matches solutions/")
    else:
        for name in release(course_dir, args.assignments or None):
            print(f"released assignments/{name}/")
    return 0


def _grading_args(p) -> None:
    p.add_argument("--out", type=Path, help="this batch's report folder (default reports/<assignment>/<date>_<time>/;"
                                            " an earlier report there is renamed, never deleted)")
    p.add_argument("--no-sandbox", action="store_true",
                   help="grade without the bubblewrap sandbox (student code then runs with YOUR rights: it can "
                        "read solutions/, the gradebook and other students' work, and change them)")
    p.add_argument("--time-limit", type=float, default=SUBMISSION_WALL_SECONDS, metavar="SECONDS",
                   help=f"wall time one submission may take in all (default {SUBMISSION_WALL_SECONDS}); "
                        "a submission stopped by it is reported as 'grading failed'")
    p.add_argument("--memory-limit", type=int, metavar="MIB",
                   help="memory one submission may use (default: the solution's measured peak in "
                        "course/BUDGET.md + 1024 MiB, else 3072 MiB)")


def _collect_args(p) -> None:
    p.add_argument("assignment")
    p.add_argument("submissions", type=Path, help="folder with one file per student (student id in the name)")
    p.add_argument("--id-pattern", help="regular expression with one group that captures the student id")
    p.add_argument("--dry-run", action="store_true", help="only print the file -> student id mapping")
    _grading_args(p)


def _autograde_args(p) -> None:
    p.add_argument("assignment")
    p.add_argument("--student", action="append", metavar="ID",
                   help="regrade only this student's filed submission (repeatable); default: everyone")
    _grading_args(p)


def _print_batch(subs: list[Submission]) -> None:
    for sub in subs:
        score = f"{sub.score:g}/{sub.max_score:g}" if sub.score is not None and sub.max_score else "-"
        print(f"{sub.student_id or '?':14s} {sub.status:16s} {score:8s} {sub.file}")


def _grading_options(args) -> dict:
    if args.no_sandbox:
        print("warning: grading WITHOUT a sandbox: each submission runs with your rights and can read "
              "solutions/, the gradebook and other submissions, and change them", file=sys.stderr)
    return dict(sandboxed=not args.no_sandbox, time_limit=args.time_limit, memory_mib=args.memory_limit)


def _collect(args, course_dir: Path) -> int:
    options = {} if args.dry_run else _grading_options(args)
    subs = collect_and_grade(args.assignment, args.submissions, course_dir, args.out, args.id_pattern,
                             dry_run=args.dry_run, **options)
    if not args.dry_run:
        _print_batch(subs)
    return 0


def _autograde(args, course_dir: Path) -> int:
    _print_batch(grade_collected(args.assignment, course_dir, args.out, students=args.student,
                                 **_grading_options(args)))
    return 0


def _export_args(p) -> None:
    p.add_argument("assignment")
    p.add_argument("--out", type=Path, help="where grades.csv, canvas.csv and moodle.csv go "
                                            "(default reports/<assignment>/export/)")
    p.add_argument("--canvas-column", metavar="NAME",
                   help="the assignment's column in Canvas' gradebook, as Canvas exports it: 'Energy (12345)' "
                        "(default: the assignment's name, which Canvas imports as a new assignment)")


def _export(args, course_dir: Path) -> int:
    export(args.assignment, course_dir, args.out, args.canvas_column)
    return 0


def _exchange_args(p) -> None:
    p.add_argument("action", choices=("release", "collect", "feedback"))
    p.add_argument("assignment")
    _grading_args(p)


def _exchange(args, course_dir: Path) -> int:
    import grade_exchange
    return grade_exchange.run(args, course_dir)


# name -> (help, add its arguments to a parser, run it with (args, course_dir) and return the exit status)
COMMANDS = {
    "list": ("the assignments and whether their release is current", _list_args, _list),
    "release": ("regenerate assignments/ from solutions/", _release_args, _release),
    "collect-and-grade": ("file, autograde and report a folder of LMS submissions", _collect_args, _collect),
    "autograde": ("autograde, sandboxed, what is filed in submitted/ (nbgrader collect, or a regrade)",
                  _autograde_args, _autograde),
    "export": ("after manual grading: final grades.csv, Canvas and Moodle CSVs, refreshed feedback pages",
               _export_args, _export),
    "exchange": ("JupyterHub: release into, collect (and autograde) from, and return feedback through nbgrader's "
                 "exchange (utils/grade_exchange.py)", _exchange_args, _exchange),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="grade.py", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--course-dir", type=Path, default=ROOT,
                        help="the course directory with nbgrader_config.py and solutions/ (default: this checkout)")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, (help_text, add_arguments, _) in COMMANDS.items():
        add_arguments(commands.add_parser(name, help=help_text))
    args = parser.parse_args(argv)
    course_dir = args.course_dir.resolve()
    try:
        if not (course_dir / "nbgrader_config.py").is_file() or not (course_dir / "solutions").is_dir():
            raise GradingError(f"{course_dir} is not a course directory (it needs nbgrader_config.py and solutions/)")
        return COMMANDS[args.command][2](args, course_dir)
    except GradingError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
