"""Manual grading as docs/manual_grading.md describes it, walked in a real (headless) Chromium with nbgrader 0.9.6.

A temporary course (a copy of the course's nbgrader_config.py and of the `attention_variants` source, the
assignment with the fastest graded cells) gets the release, a roster imported with `nbgrader db student
import`, one submission (the solutions filled in, two written answers) and `nbgrader autograde`. Then
JupyterLab is started in it, as `make lab` starts it from the repository root, and Playwright drives
Debian's Chromium (`/usr/bin/chromium`; Playwright's own browser download is never used) through
Formgrader → Manual Grading → assignment → notebook → Submission, with a screenshot of every step in
build/manual_grading/ (ignored by git). It checks what the docs promise:
- no exchange warning banner in the Formgrader, and no "Unwritable directory" lines in the server log
  (the course's nbgrader_config.py sets a local exchange folder);
- the roster's names show ("Lovelace, Ada", not "None, None");
- the submission page shows the written answer with a score box, and the numbers the question asks the
  student to use (the KV-cache table, cheap arithmetic that runs while grading);
- every manually graded answer has a model answer in the source notebook, to open beside the Formgrader.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
NAME = "attention_variants"
SHOTS = ROOT / "build" / "manual_grading"
ANSWER = "My answer: GQA divides SmolLM2's KV cache by three, 540 MiB down to 180 MiB in my table."

if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium package (apt-get install -y chromium) "
                "to run the Formgrader walk-through", allow_module_level=True)
playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

VENV_BIN = Path(sys.executable).parent


def _env(home: Path, base: dict | None = None) -> dict:
    base = dict(os.environ) if base is None else base
    return {**base, "PATH": f"{VENV_BIN}{os.pathsep}{base.get('PATH', '')}", "HF_HUB_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1", "JUPYTER_CONFIG_DIR": str(home / "config"),
            "JUPYTER_RUNTIME_DIR": str(home / "runtime"), "JUPYTER_DATA_DIR": str(home / "data")}


def _nbgrader(course: Path, env: dict, *args: str) -> None:
    run = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, env=env, capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{run.stderr[-3000:]}"


def _submission(release: dict, source: dict) -> dict:
    """The release with the solution code filled in and every written answer given, as a student hands it in."""
    solutions = {c["metadata"].get("nbgrader", {}).get("grade_id"): "".join(c["source"]) for c in source["cells"]}
    nb = json.loads(json.dumps(release))
    for cell in nb["cells"]:
        meta = cell["metadata"].get("nbgrader", {})
        if not meta.get("solution"):
            continue
        if cell["cell_type"] == "code":
            cell["source"] = "\n".join(line for line in solutions[meta["grade_id"]].splitlines()
                                       if not re.match(r"\s*### (BEGIN|END) SOLUTION", line))
        else:
            cell["source"] = ANSWER
    return nb


def prepare_graded_course(folder, base_env=None):
    """A temporary course with one autograded submission by s001 (Ada Lovelace in the roster); one of the
    session's grading runs (tests/conftest.py's grading_jobs), started with the others."""
    course, home = Path(folder) / "course", Path(folder) / "jupyter"
    course.mkdir()
    home.mkdir()
    env = _env(home, base_env)
    shutil.copy(ROOT / "nbgrader_config.py", course / "nbgrader_config.py")
    shutil.copytree(ROOT / "solutions" / NAME, course / "solutions" / NAME)
    _nbgrader(course, env, "generate_assignment", NAME, "--force")
    (course / "roster.csv").write_text("id,first_name,last_name,email\ns001,Ada,Lovelace,ada@example.org\n")
    _nbgrader(course, env, "db", "student", "import", "roster.csv")
    release = json.loads((course / "assignments" / NAME / f"{NAME}.ipynb").read_text())
    source = json.loads((course / "solutions" / NAME / f"{NAME}.ipynb").read_text())
    target = course / "submitted" / "s001" / NAME / f"{NAME}.ipynb"
    target.parent.mkdir(parents=True)
    target.write_text(json.dumps(_submission(release, source)))
    _nbgrader(course, env, "autograde", NAME, "--force")  # our own solution: trusted, no sandbox needed
    return course, home, env


def background_jobs(item):
    if "walk" in getattr(item, "fixturenames", ()):
        yield 5, "manual_grading:course", prepare_graded_course


@pytest.fixture(scope="module")
def graded_course(grading_jobs):
    return grading_jobs.result("manual_grading:course", prepare_graded_course)


@pytest.fixture(scope="module")
def walk(graded_course):
    """Start JupyterLab in the course, walk the Formgrader; returns {step: page text}, the server log."""
    course, home, env = graded_course
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log_path = home / "server.log"
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [str(VENV_BIN / "jupyter"), "lab", "--no-browser", "--allow-root", "--IdentityProvider.token=",
             f"--port={port}", "--ServerApp.ip=127.0.0.1"],
            cwd=course, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    SHOTS.mkdir(parents=True, exist_ok=True)
    pages = {}
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(base + "/api/status", timeout=5)
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, log_path.read_text()[-3000:]
                time.sleep(1)
        with playwright_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(60_000)

            def step(name, full_page=False):
                page.wait_for_load_state("networkidle")
                page.screenshot(path=str(SHOTS / f"{len(pages) + 1}_{name}.png"), full_page=full_page)
                pages[name] = page.inner_text("body")

            page.goto(base + "/formgrader")
            page.wait_for_selector("text=attention_variants")
            step("formgrader")
            page.click("text=Manage Students")
            page.wait_for_selector("text=Lovelace")
            step("students")
            page.click("text=Manual Grading")
            page.wait_for_selector(f"a:has-text('{NAME}')")
            step("manual_grading")
            page.click(f"a:has-text('{NAME}')")                 # the assignment
            page.wait_for_selector(f"td a:has-text('{NAME}')")
            step("assignment")
            page.click(f"td a:has-text('{NAME}')")              # the notebook
            page.wait_for_selector("text=Submission #1")
            page.click("text=Show All Names")
            page.wait_for_selector("text=Lovelace")
            step("notebook")
            page.click("text=Lovelace")                         # the submission
            page.wait_for_selector("text=My answer")
            page.locator("text=My answer").first.scroll_into_view_if_needed()
            step("submission")
            page.screenshot(path=str(SHOTS / f"{len(pages) + 1}_submission_full.png"), full_page=True)
            pages["score_boxes"] = page.locator("input.score").count()
            browser.close()
        time.sleep(3)  # let the server log what it logs every few seconds
    finally:
        os.killpg(server.pid, 15)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, 9)
    return pages, log_path.read_text()


def test_the_course_config_sets_a_local_exchange():
    text = (ROOT / "nbgrader_config.py").read_text()
    assert "c.Exchange.root" in text and "nbgrader_exchange" in text
    assert "nbgrader_exchange/" in (ROOT / ".gitignore").read_text()


def test_no_exchange_warning_and_no_log_spam(walk):
    pages, log = walk
    assert "exchange directory" not in pages["formgrader"].lower()
    assert "Unwritable directory" not in log and "exchange" not in log.lower().replace("exchange_", ""), log[-2000:]


def test_roster_names_show(walk):
    pages, _ = walk
    assert "Lovelace" in pages["students"] and "None, None" not in pages["students"]
    assert "Lovelace, Ada" in pages["notebook"] or "Ada Lovelace" in pages["notebook"]


def test_the_walk_follows_the_documented_path(walk):
    pages, _ = walk
    assert "Manual Grading" in pages["manual_grading"] and NAME in pages["assignment"]
    doc = (ROOT / "docs" / "manual_grading.md").read_text()
    assert "Formgrader → Manual Grading → " in doc and "Submission" in doc
    assert "Manage Assignments → energy → submissions" not in doc


def test_submission_page_shows_answer_numbers_and_score_boxes(walk):
    pages, _ = walk
    text = pages["submission"]
    assert ANSWER in text
    assert "KV cache at 8,192 tokens" in text and "180 MiB" in text, "the grader must see the student's numbers"
    assert pages["score_boxes"] >= 2, "one score box per written answer"


def test_every_written_answer_has_a_model_answer_to_show_beside_it():
    for source in sorted((ROOT / "solutions").glob("*/*.ipynb")):
        for cell in json.loads(source.read_text())["cells"]:
            meta = cell["metadata"].get("nbgrader", {})
            if cell["cell_type"] == "markdown" and meta.get("grade") and meta.get("solution"):
                text = "".join(cell["source"])
                assert "### BEGIN SOLUTION" in text and len(text) > 200, f"{source.name}: {meta['grade_id']}"
