"""The instructor's command for the course's nbgrader assignments.

    python utils/grade.py list
        the assignments, their points, and whether the student release is up to date

    python utils/grade.py release [ASSIGNMENT ...] [--check]
        regenerate assignments/ (the student release) from solutions/ with `nbgrader generate_assignment`;
        with --check change nothing and exit 1 if assignments/ differs from what it would generate

    python utils/grade.py collect-and-grade ASSIGNMENT SUBMISSIONS_FOLDER [--out DIR] [--id-pattern REGEX]
        take the files an LMS exports (one per student, the student id in the file name), file them into
        nbgrader's layout (submitted/<id>/<assignment>/<assignment>.ipynb), autograde them all and write
        grades.csv and one feedback HTML per student into --out (default feedback/<assignment>-report/)

    python utils/grade.py autograde ASSIGNMENT [--out DIR]
        the same for what `nbgrader collect` filed in submitted/<student>/<assignment>/ (JupyterHub)

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
student id in its name is reported with no score (there is nobody to give it to) until it is renamed.
Only the folders of the students in the batch are written; a file whose id another file of the batch
also claims is reported, not silently merged. Running the command again gives the same grades.
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
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "utils") not in sys.path:      # utils/sandbox.py, beside this file
    sys.path.insert(0, str(ROOT / "utils"))
CSV_FIELDS = ["student_id", "file", "status", "autograded_score", "autograded_max", "manual_max",
              "course_version", "notes"]
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
# collect and grade
# ----------------------------------------------------------------------------------------------

@dataclass
class Submission:
    file: str                       # path relative to the submissions folder
    student_id: str = ""
    status: str = "pending"
    score: float | None = None
    max_score: float | None = None
    manual_max: float | None = None
    version: str = ""
    notes: list[str] = field(default_factory=list)
    notebook: dict | None = None    # the parsed notebook, when it is one
    sanitized: bool = False         # its grader metadata was repaired before filing

    def row(self) -> dict[str, str]:
        def number(x):
            return "" if x is None else f"{x:g}"
        return {"student_id": self.student_id, "file": self.file, "status": self.status,
                "autograded_score": number(self.score), "autograded_max": number(self.max_score),
                "manual_max": number(self.manual_max), "course_version": self.version,
                "notes": "; ".join(self.notes)}


def student_id_from_name(relative_path: str, assignment: str, pattern: str | None = None) -> str | None:
    """The student id in an LMS file name.

    With `pattern` (a regular expression with one group, searched in the path relative to the
    submissions folder) that group. Otherwise the first word of the name that contains a digit, once
    the assignment's name and the extension are removed: `s1234567_energy.ipynb` -> s1234567,
    Canvas' `smithjane_12345_67890_energy.ipynb` -> 12345, Moodle's
    `Jane Smith_12345_assignsubmission_file_energy.ipynb` -> 12345.
    """
    if pattern:
        match = re.search(pattern, relative_path)
        return match.group(1) if match and match.groups() else None
    stem = relative_path
    for ext in (".ipynb", ".json", ".txt", ".pdf", ".py", ".zip", ".html"):
        if stem.lower().endswith(ext):
            stem = stem[: -len(ext)]
    stem = re.sub(re.escape(assignment), " ", stem, flags=re.IGNORECASE)
    for word in re.split(r"[^A-Za-z0-9]+", stem):
        if any(ch.isdigit() for ch in word):
            return word
    return None


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
    """Several files claim one student id: grade the newest (then the last by name), report the rest."""
    ranked = sorted(subs, key=lambda s: ((folder / s.file).stat().st_mtime, s.file))
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


def collect_and_grade(assignment: str, submissions: Path, course_dir: Path = ROOT, out: Path | None = None,
                      id_pattern: str | None = None, log=print, sandboxed: bool = True,
                      time_limit: float = SUBMISSION_WALL_SECONDS, memory_mib: int | None = None) -> list[Submission]:
    """File, autograde and report one batch of submissions; returns one Submission per file.

    Each submission's code runs in the grading sandbox (utils/sandbox.py). Without one (no bubblewrap,
    not Linux) this refuses, unless `sandboxed=False` (`--no-sandbox`): then student code runs with the
    instructor's rights and can read the solutions and change any file the instructor can.
    """
    from nbgrader.api import Gradebook, MissingEntry

    import sandbox
    import slmcourse

    if sandboxed and (problem := sandbox.sandbox_problem()):
        raise GradingError(f"cannot sandbox the submissions: {problem}.\nStudent code would run with your rights "
                           "(it could read solutions/ and change the gradebook or other students' files). Install "
                           "bubblewrap, or pass --no-sandbox to grade anyway at that risk.")

    course_dir, submissions = Path(course_dir).resolve(), Path(submissions).resolve()
    _check_assignment(course_dir, assignment)
    if not submissions.is_dir():
        raise GradingError(f"{submissions} is not a folder of submissions")
    out = Path(out).resolve() if out else course_dir / "feedback" / f"{assignment}-report"
    if out.is_relative_to(submissions) or submissions.is_relative_to(out):
        raise GradingError("--out must not be inside the submissions folder (or contain it)")

    # 1. the gradebook must know the assignment as it is now: generate its release into a scratch folder
    with tempfile.TemporaryDirectory(prefix="slm-grade-release-") as scratch:
        nbgrader(course_dir, "generate_assignment", assignment, "--force",
                 f"--CourseDirectory.release_directory={scratch}")
        release_nb = _read_json(Path(scratch) / assignment / f"{assignment}.ipynb")
    course_version = slmcourse.__version__

    # 2. look at every file
    subs: list[Submission] = []
    for path in sorted(p for p in submissions.rglob("*") if p.is_file()):
        rel = path.relative_to(submissions).as_posix()
        if path.name in IGNORED_FILES or path.name.startswith(".") or "__MACOSX" in path.parts \
                or ".ipynb_checkpoints" in path.parts:
            continue
        sub = Submission(file=rel)
        subs.append(sub)
        sid = student_id_from_name(rel, assignment, id_pattern)
        if not sid:
            sub.status = "no student id"
            sub.notes.append("no student id found in the file name: rename it or use --id-pattern")
            continue
        if not SAFE_ID.match(sid) or sid.endswith("-report"):
            sub.status = "no student id"
            sub.notes.append(f"{sid!r} cannot be used as a student id (letters, digits, '_', '.', '-')")
            continue
        sub.student_id = sid
        _inspect(path, sub, release_nb, course_version)

    by_id: dict[str, list[Submission]] = {}
    for sub in subs:
        if sub.student_id:
            by_id.setdefault(sub.student_id, []).append(sub)
    chosen = {sid: (group[0] if len(group) == 1 else _choose(group, submissions)) for sid, group in by_id.items()}

    # 3. file the gradable ones into submitted/<id>/<assignment>/<assignment>.ipynb (only those students)
    to_grade = [s for s in chosen.values() if s.notebook is not None]
    for sub in to_grade:
        folder = course_dir / "submitted" / sub.student_id / assignment
        if folder.exists():
            shutil.rmtree(folder)
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
    with Gradebook(f"sqlite:///{course_dir / 'gradebook.db'}") as gb:
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

    # 6. write the report: grades.csv and one feedback page per student
    if out.exists():
        shutil.rmtree(out)
    (out / "feedback").mkdir(parents=True)
    rows = sorted(subs, key=lambda s: (s.student_id == "", s.student_id, s.file))
    with open(out / "grades.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_FIELDS, lineterminator="\n")
        writer.writeheader()
        for sub in rows:
            writer.writerow(sub.row())
    for sub in rows:
        if not sub.student_id or sub.status == "duplicate":
            continue
        page = out / "feedback" / f"{sub.student_id}.html"
        made = course_dir / "feedback" / sub.student_id / assignment / f"{assignment}.html"
        if sub.status == "graded" and made.is_file():
            shutil.copyfile(made, page)
        else:
            body = (f"<p>Your submission <code>{html.escape(sub.file)}</code> could not be graded: "
                    f"<b>{html.escape(sub.status)}</b>.</p>\n<p>{html.escape('; '.join(sub.notes))}</p>\n"
                    f"<p>Autograded score: 0 / {sub.max_score:g}. Please submit the notebook "
                    f"<code>{assignment}.ipynb</code> from the course's assignments folder.</p>")
            page.write_text(_html_page(f"{assignment}: feedback for {sub.student_id}", body), encoding="utf-8")
    log(f"wrote {out / 'grades.csv'} and {len([r for r in rows if r.student_id and r.status != 'duplicate'])} "
        f"feedback page(s) in {out / 'feedback'}")
    return subs


def grade_collected(assignment: str, course_dir: Path = ROOT, out: Path | None = None, **options) -> list[Submission]:
    """Grade what `nbgrader collect` filed as submitted/<student>/<assignment>/<assignment>.ipynb (JupyterHub).

    The same path as collect-and-grade (each submission in the sandbox, grades.csv, feedback pages), with
    the collected notebooks as the batch: they are copied out first, so filing them again changes nothing.
    """
    course_dir = Path(course_dir).resolve()
    _check_assignment(course_dir, assignment)
    with tempfile.TemporaryDirectory(prefix="slm-collected-") as batch:
        for nb in sorted((course_dir / "submitted").glob(f"*/{assignment}/{assignment}.ipynb")):
            student = nb.parents[1].name
            (Path(batch) / student).mkdir()
            shutil.copy2(nb, Path(batch) / student / f"{assignment}.ipynb")
        return collect_and_grade(assignment, Path(batch), course_dir, out, id_pattern=r"^([^/]+)/", **options)


# ----------------------------------------------------------------------------------------------
# command line
# ----------------------------------------------------------------------------------------------

def _points(course_dir: Path, name: str) -> str:
    meta = _read_json(course_dir / "solutions" / name / f"{name}.ipynb")["metadata"].get("slmcourse", {})
    auto, manual = meta.get("points_autograded"), meta.get("points_manual")
    return f"{auto} autograded + {manual} manual" if auto is not None else "?"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="grade.py", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--course-dir", type=Path, default=ROOT,
                        help="the course directory with nbgrader_config.py and solutions/ (default: this checkout)")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="the assignments and whether their release is current")
    rel = commands.add_parser("release", help="regenerate assignments/ from solutions/")
    rel.add_argument("assignments", nargs="*", help="default: all")
    rel.add_argument("--check", action="store_true", help="change nothing; exit 1 if assignments/ is out of date")
    cg = commands.add_parser("collect-and-grade", help="file, autograde and report a folder of LMS submissions")
    cg.add_argument("assignment")
    cg.add_argument("submissions", type=Path, help="folder with one file per student (student id in the name)")
    cg.add_argument("--id-pattern", help="regular expression with one group that captures the student id")
    ag = commands.add_parser("autograde", help="autograde, sandboxed, what `nbgrader collect` put in submitted/")
    ag.add_argument("assignment")
    ex = commands.add_parser("exchange", help="JupyterHub: release into, collect (and autograde) from, and return "
                             "feedback through nbgrader's exchange (utils/grade_exchange.py)")
    ex.add_argument("action", choices=("release", "collect", "feedback"))
    ex.add_argument("assignment")
    for p in (cg, ag, ex):
        p.add_argument("--out", type=Path,
                       help="where grades.csv and feedback/ go (default feedback/<assignment>-report)")
        p.add_argument("--no-sandbox", action="store_true",
                       help="grade without the bubblewrap sandbox (student code then runs with YOUR rights: it can "
                            "read solutions/, the gradebook and other students' work, and change them)")
        p.add_argument("--time-limit", type=float, default=SUBMISSION_WALL_SECONDS, metavar="SECONDS",
                       help=f"wall time one submission may take in all (default {SUBMISSION_WALL_SECONDS}); "
                            "a submission stopped by it is reported as 'grading failed'")
        p.add_argument("--memory-limit", type=int, metavar="MIB",
                       help="memory one submission may use (default: the solution's measured peak in "
                            "course/BUDGET.md + 1024 MiB, else 3072 MiB)")
    args = parser.parse_args(argv)
    course_dir = args.course_dir.resolve()
    try:
        if not (course_dir / "nbgrader_config.py").is_file() or not (course_dir / "solutions").is_dir():
            raise GradingError(f"{course_dir} is not a course directory (it needs nbgrader_config.py and solutions/)")
        if args.command == "list":
            for name in assignment_names(course_dir):
                state = "up to date" if not release_differences(course_dir, [name]) else "OUT OF DATE"
                print(f"{name:22s} {_points(course_dir, name):26s} release {state}")
        elif args.command == "release":
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
        elif args.command == "exchange":
            import grade_exchange
            return grade_exchange.run(args, course_dir)
        else:
            if args.no_sandbox:
                print("warning: grading WITHOUT a sandbox: each submission runs with your rights and can read "
                      "solutions/, the gradebook and other submissions, and change them", file=sys.stderr)
            options = dict(sandboxed=not args.no_sandbox, time_limit=args.time_limit, memory_mib=args.memory_limit)
            if args.command == "autograde":
                subs = grade_collected(args.assignment, course_dir, args.out, **options)
            else:
                subs = collect_and_grade(args.assignment, args.submissions, course_dir, args.out, args.id_pattern,
                                         **options)
            for sub in subs:
                score = f"{sub.score:g}/{sub.max_score:g}" if sub.score is not None and sub.max_score else "-"
                print(f"{sub.student_id or '?':14s} {sub.status:16s} {score:8s} {sub.file}")
    except GradingError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
