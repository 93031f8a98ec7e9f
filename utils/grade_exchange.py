"""The JupyterHub path of `utils/grade.py`: nbgrader's exchange between the instructor and the learners.

    python utils/grade.py exchange release  ASSIGNMENT   register it in the gradebook, put assignments/<name>/ in the exchange
    python utils/grade.py exchange collect  ASSIGNMENT   take the learners' submissions from the exchange and autograde
                                                         them (sandboxed, with grade.py's checks: grades.csv + feedback)
    python utils/grade.py exchange feedback ASSIGNMENT   regenerate the feedback (with your manual grades) and put it in
                                                         the exchange, where learners "Fetch Feedback"

Run it as the instructor, on the hub (a terminal in the instructor's JupyterLab, or a shell with the same
environment), from the instructor's copy of the repository or with `--course-dir`. The exchange itself (the course
id, `Exchange.root`) comes from the hub-wide nbgrader_config.py the guide installs (docs/jupyterhub.md): nbgrader
finds it through `JUPYTER_CONFIG_PATH`, which the hub sets for every server.

What plain nbgrader gets wrong here, and this does instead:
- `release`: the committed release (assignments/<name>/, made by `grade.py release`) is released as it is; the
  gradebook learns the assignment from a `generate_assignment --force` into a scratch folder, so assignments/
  is never rewritten (plain `nbgrader generate_assignment <name>` skips an existing release and registers
  nothing, and `nbgrader autograde` then fails with "No assignment with ID ... exists in the database");
- `collect`: after `nbgrader collect`, the submissions are graded by grade.py's `autograde` (each kernel in the
  bubblewrap sandbox, renamed or deleted grader cells repaired, one grades.csv), not by plain `nbgrader autograde`,
  which runs learners' code with the instructor's rights.
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

# grade.py run as a script is __main__: use that module (its GradingError is the one it catches)
if Path(getattr(sys.modules.get("__main__"), "__file__", None) or "").name == "grade.py":
    grade = sys.modules["__main__"]
else:
    import grade

ACTIONS = ("release", "collect", "feedback")


def exchange_settings(course_dir: Path) -> dict[str, str]:
    """The course id and exchange folder nbgrader sees from `course_dir` (raises GradingError when unusable)."""
    script = ("from nbgrader.apps import NbGrader; from nbgrader.coursedir import CourseDirectory; "
              "from nbgrader.exchange.default.exchange import Exchange; a = NbGrader(); a.load_config_file(); "
              "print(CourseDirectory(config=a.config).course_id); print(Exchange(config=a.config).root); "
              "print(Exchange(config=a.config).path_includes_course)")
    result = subprocess.run([sys.executable, "-c", script], cwd=course_dir, env=grade._environment(),
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise grade.GradingError(f"cannot read nbgrader's configuration in {course_dir}:\n{result.stderr[-2000:]}")
    course_id, root, includes = result.stdout.split("\n")[-4:-1]
    if not course_id:
        raise grade.GradingError("no course id is configured (CourseDirectory.course_id)")
    if not Path(root).is_dir():
        raise grade.GradingError(
            f"the exchange {root} does not exist: install the hub-wide nbgrader_config.py (docs/jupyterhub.md, "
            "step 4) and run this where the hub's JUPYTER_CONFIG_PATH is set (a terminal on the hub)")
    return {"course_id": course_id, "root": root, "path_includes_course": includes}


def register(course_dir: Path, assignment: str) -> None:
    """Put the assignment (its cells, points and hidden tests) into the gradebook; assignments/ is not touched."""
    with tempfile.TemporaryDirectory(prefix="slm-register-") as scratch:
        grade.nbgrader(course_dir, "generate_assignment", assignment, "--force",
                       f"--CourseDirectory.release_directory={scratch}")


def release(course_dir: Path, assignment: str, log=print) -> None:
    settings = exchange_settings(course_dir)
    if not (course_dir / "assignments" / assignment / f"{assignment}.ipynb").is_file():
        raise grade.GradingError(f"assignments/{assignment}/ is missing: run `python utils/grade.py release {assignment}`")
    register(course_dir, assignment)
    grade.nbgrader(course_dir, "release_assignment", assignment, "--force")
    log(f"released {assignment} of {settings['course_id']} into {settings['root']}: learners can fetch it")


def collect(course_dir: Path, assignment: str, out: Path | None = None, log=print, **options):
    """`nbgrader collect` (the newest submission of every learner), then grade.py's sandboxed autograde."""
    exchange_settings(course_dir)
    grade.nbgrader(course_dir, "collect", assignment, "--update")
    # what nbgrader collect wrote beside each notebook (timestamp.txt, submission_secret.txt): grade.py files each
    # notebook anew, and `nbgrader generate_feedback`/`release_feedback` need them with the graded copy
    extras = {}
    for folder in (course_dir / "submitted").glob(f"*/{assignment}"):
        extras[folder.parent.name] = {f.name: f.read_bytes() for f in folder.iterdir()
                                      if f.is_file() and f.suffix != ".ipynb"}
    subs = grade.grade_collected(assignment, course_dir, out, log=log, **options)
    for student, files in extras.items():
        for step in ("submitted", "autograded", "feedback"):
            folder = course_dir / step / student / assignment
            for name, data in files.items():
                if folder.is_dir() and not (folder / name).exists():
                    (folder / name).write_bytes(data)
    return subs


def release_feedback(course_dir: Path, assignment: str, log=print) -> None:
    exchange_settings(course_dir)
    grade.nbgrader(course_dir, "generate_feedback", assignment, "--force")
    grade.nbgrader(course_dir, "release_feedback", assignment)
    log(f"released the feedback of {assignment}: learners can fetch it")


def run(args, course_dir: Path) -> int:
    """`grade.py exchange ACTION ASSIGNMENT` (grade.py parses the options and catches GradingError)."""
    grade._check_assignment(course_dir, args.assignment)
    if args.action == "collect" and args.no_sandbox:
        print("warning: grading WITHOUT a sandbox: each submission runs with your rights", file=sys.stderr)
    if args.action == "release":
        release(course_dir, args.assignment)
    elif args.action == "feedback":
        release_feedback(course_dir, args.assignment)
    else:
        subs = collect(course_dir, args.assignment, args.out, sandboxed=not args.no_sandbox,
                       time_limit=args.time_limit, memory_mib=args.memory_limit)
        for sub in subs:
            score = f"{sub.score:g}/{sub.max_score:g}" if sub.score is not None and sub.max_score else "-"
            print(f"{sub.student_id or '?':14s} {sub.status:16s} {score:8s} {sub.file}")
    return 0
