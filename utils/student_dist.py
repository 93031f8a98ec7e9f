"""`make student-dist`: the course as students should get it in a classroom, without the instructor's files.

    python utils/student_dist.py [--out DIR] [--force]

copies every file git tracks (as it is in the working tree: run it on a clean checkout) into DIR
(default build/student-dist), leaving out what only the instructor may see:

    solutions/                         the assignments' sources: solutions, hidden tests, model answers
    utils/grade.py, utils/sandbox.py,  the grading tools, nbgrader's course configuration and the
    nbgrader_config.py                 instructor's docs (docs/instructors.md, manual grading, private
    docs/instructors.md, ...           solutions)
    tests that read solutions/         (they could not run without it, and some quote hidden tests)

and then checks the result: no file may contain nbgrader's solution or hidden-test markers or a model
answer, and every relative link in a Markdown file must still point to a file of the distribution (links
to left-out files are turned into plain text). The student release `assignments/` stays: it is what
students open. Push DIR to the public repository the students' Binder, Colab and hub links point to
(docs/private_solutions.md); keep this repository, with solutions/, private.
"""
from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "build" / "student-dist"

# instructor-only paths (a folder leaves out everything below it)
EXCLUDED = (
    "solutions/",
    "nbgrader_config.py",
    "utils/grade.py",
    "utils/sandbox.py",
    "utils/student_dist.py",
    "docs/instructors.md",
    "docs/manual_grading.md",
    "docs/private_solutions.md",
    "tests/adversarial/",
    "tests/test_student_dist.py",
    "tests/test_manual_grading.py",
    "tests/test_assignment_fairness.py",
)
# a test that mentions one of these needs the instructor's files: it stays with them
INSTRUCTOR_ONLY_WORDS = re.compile(r"solutions[/\"']|\bgrade\.py\b|import grade\b|nbgrader_config\.py|utils/sandbox")
# what must never reach students (nbgrader's markers of solutions, hidden tests and model answers)
LEAKS = re.compile(r"### (BEGIN|END) (SOLUTION|HIDDEN TESTS)|\*Model answer")
LINK = re.compile(r"\[([^\]]*)\]\((?!https?:|mailto:|#)([^)\s#]+)(#[^)]*)?\)")


class DistError(RuntimeError):
    pass


def tracked_files(root: Path = ROOT) -> list[str]:
    out = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True, check=True).stdout
    return [p for p in out.decode("utf-8").split("\0") if p]


def excluded(path: str, root: Path = ROOT) -> bool:
    if any(path == e or (e.endswith("/") and path.startswith(e)) for e in EXCLUDED):
        return True
    if path.startswith("tests/test_") and path.endswith(".py"):
        try:
            text = (root / path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return False
        return bool(INSTRUCTOR_ONLY_WORDS.search(text))
    return False


def _fix_links(md: Path, out: Path) -> int:
    """Turn links to files that are not in the distribution into plain text; return how many."""
    text = md.read_text(encoding="utf-8")
    changed = 0

    def repl(m):
        nonlocal changed
        target = (md.parent / m.group(2)).resolve()
        if target.exists() or not str(target).startswith(str(out.resolve())):
            return m.group(0)
        changed += 1
        return f"{m.group(1)} (instructor's copy only)"

    new = LINK.sub(repl, text)
    if changed:
        md.write_text(new, encoding="utf-8")
    return changed


def _patch_config(out: Path) -> None:
    """pyproject's test paths and the Makefile must not name what was left out."""
    pyproject = out / "pyproject.toml"
    if pyproject.is_file():
        text = pyproject.read_text(encoding="utf-8")
        pyproject.write_text(re.sub(r',\s*"solutions"', "", text), encoding="utf-8")
    makefile = out / "Makefile"
    if makefile.is_file():
        text = makefile.read_text(encoding="utf-8")
        text = re.sub(r"\n# The student distribution.*?(?=\n\n|\Z)", "", text, flags=re.S)
        text = text.replace(" student-dist", "")
        makefile.write_text(text, encoding="utf-8")


def leaks(out: Path) -> list[str]:
    """Files of the distribution that contain a solution/hidden-test marker or a model answer."""
    found = []
    for path in sorted(out.rglob("*")):
        if not path.is_file() or path.suffix not in {".ipynb", ".py", ".md", ".txt", ".json", ".cfg", ".toml", ""}:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        if LEAKS.search(text):
            found.append(str(path.relative_to(out)))
    return found


def build(out: Path = DEFAULT_OUT, root: Path = ROOT, force: bool = False) -> dict:
    """Write the student distribution into `out`; returns {"copied", "left_out", "links_fixed"}."""
    out, root = Path(out).resolve(), Path(root).resolve()
    inside = out == root or root in out.parents
    if out in root.parents or (inside and (root / "build") not in out.parents):
        raise DistError(f"write the distribution outside the course or under build/, not to {out}")
    if out.exists():
        if not force and any(out.iterdir()):
            raise DistError(f"{out} exists and is not empty: pass --force to replace it")
        shutil.rmtree(out)
    copied, left_out = [], []
    for rel in tracked_files(root):
        src = root / rel
        if excluded(rel, root):
            left_out.append(rel)
            continue
        if not src.is_file():  # a tracked file deleted in the working tree, or a submodule
            continue
        dst = out / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst)
        copied.append(rel)
    _patch_config(out)
    links = sum(_fix_links(md, out) for md in out.rglob("*.md"))
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True).stdout.strip()
    (out / "STUDENT_DISTRIBUTION.md").write_text(
        "# Student distribution\n\nMade by `make student-dist` from the instructor's repository"
        f"{' at commit ' + commit if commit else ''}. It has no assignment solutions, hidden tests or model\n"
        "answers: the assignments in `assignments/` are the student release. Lessons keep their worked answers.\n",
        encoding="utf-8")
    bad = leaks(out)
    if bad:
        raise DistError("instructor-only content in the student distribution: " + ", ".join(bad))
    if (out / "solutions").exists():
        raise DistError("solutions/ reached the student distribution")
    return {"copied": copied, "left_out": left_out, "links_fixed": links}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="student_dist.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where to write it (default build/student-dist)")
    parser.add_argument("--force", action="store_true", help="replace --out if it exists")
    args = parser.parse_args(argv)
    try:
        report = build(args.out, force=args.force)
    except DistError as error:
        print(f"student_dist: {error}", file=sys.stderr)
        return 1
    print(f"student distribution in {args.out}: {len(report['copied'])} files, "
          f"{len(report['left_out'])} instructor-only files left out, {report['links_fixed']} links to them made plain text")
    for rel in report["left_out"]:
        print(f"  left out: {rel}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
