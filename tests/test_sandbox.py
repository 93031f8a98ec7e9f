"""The grading sandbox and the graders' checks, attacked.

Fast tests: the checks of slmcourse.gradecheck in this process (forbidden calls by any route, results
that lie, a patched torch.allclose), what a process inside the sandbox can see and write, the refusal
to grade without a sandbox, the review notes for suspicious code.

Slow test (`-m slow`): the adversarial submissions of tests/adversarial/ graded in one batch through
`utils/grade.py collect-and-grade`, twice: each scores what it is owed, nothing outside its scratch
folder changes, the honest student and an earlier student are untouched, grades.csv is identical.
"""
from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "utils"))
import grade  # noqa: E402
import sandbox  # noqa: E402

from slmcourse import attention as ref_attention  # noqa: E402
from slmcourse import gradecheck  # noqa: E402

NOT_YOURS = ["slmcourse", "transformers", "torch.nn.functional.scaled_dot_product_attention",
             "aten::scaled_dot_product", "aten::_scaled_dot_product"]
needs_sandbox = pytest.mark.skipif(sandbox.sandbox_problem() is not None,
                                   reason=f"no grading sandbox here: {sandbox.sandbox_problem()}")


# ----------------------------------------------------------------------------------------------
# slmcourse.gradecheck in this process
# ----------------------------------------------------------------------------------------------

def honest_gqa(q, k, v, mask=None, bias=None):
    n = q.shape[1] // k.shape[1]
    k, v = k.repeat_interleave(n, 1), v.repeat_interleave(n, 1)
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    return torch.softmax(scores, -1) @ v


@pytest.fixture
def qkv():
    gen = torch.Generator().manual_seed(0)
    return torch.randn(1, 4, 5, 8, generator=gen), torch.randn(1, 2, 5, 8, generator=gen), \
        torch.randn(1, 2, 5, 8, generator=gen)


def test_honest_call_passes(qkv):
    out = gradecheck.forbid(honest_gqa, *qkv, forbidden=NOT_YOURS)
    gradecheck.assert_close(out, ref_attention.grouped_query_attention(*qkv), atol=1e-5)


_early = ref_attention.grouped_query_attention
_alias = F.scaled_dot_product_attention


def _via_reference(q, k, v):
    return _early(q, k, v)


def _via_alias(q, k, v):
    return _alias(q, k.repeat_interleave(2, 1), v.repeat_interleave(2, 1))


def _via_map(q, k, v):            # a C function calling the C function: no profiler event, the dispatch mode sees it
    return next(iter(map(_alias, [q], [k.repeat_interleave(2, 1)], [v.repeat_interleave(2, 1)])))


def _via_thread(q, k, v):
    out = []
    worker = threading.Thread(target=lambda: out.append(_early(q, k, v)))
    worker.start()
    worker.join()
    return out[0]


@pytest.mark.parametrize("cheat", [_via_reference, _via_alias, _via_map, _via_thread])
def test_forbidden_implementation_is_caught_by_any_route(cheat, qkv):
    with pytest.raises(gradecheck.ForbiddenCall, match="forbidden: .* uses"):
        gradecheck.forbid(cheat, *qkv, forbidden=NOT_YOURS)


def test_switching_the_profiler_off_is_caught(qkv):
    def cheat(q, k, v):
        sys.setprofile(None)
        return _early(q, k, v)
    with pytest.raises(gradecheck.CheckerTampered):
        gradecheck.forbid(cheat, *qkv, forbidden=NOT_YOURS)


class Always:
    def __eq__(self, other):
        return True
    __hash__ = None


class Lying(torch.Tensor):
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        return True


@pytest.mark.parametrize("fake", [Always(), torch.zeros(1, 4, 5, 8).as_subclass(Lying), [1.0], "0", None])
def test_results_that_lie_are_rejected(fake, qkv):
    with pytest.raises(AssertionError):
        gradecheck.assert_close(fake, honest_gqa(*qkv))


def test_patched_comparisons_change_nothing(monkeypatch, qkv):
    monkeypatch.setattr(torch, "allclose", lambda *a, **k: True)
    monkeypatch.setattr(torch, "equal", lambda *a, **k: True)
    monkeypatch.setattr(torch.Tensor, "__eq__", lambda self, other: True)
    with pytest.raises(AssertionError, match="values differ"):
        gradecheck.assert_close(torch.zeros(1, 4, 5, 8), honest_gqa(*qkv))
    with pytest.raises(AssertionError):
        gradecheck.assert_equal(torch.zeros(3, dtype=torch.bool), torch.ones(3, dtype=torch.bool))


def test_numbers_and_types():
    gradecheck.assert_close(0.30000000000000004, 0.3)
    gradecheck.assert_equal([1, 2], [1, 2])
    with pytest.raises(AssertionError):
        gradecheck.assert_equal(1.0, 1)          # an int was asked for
    with pytest.raises(AssertionError):
        gradecheck.assert_close(float("nan"), 1.0)


def test_references_are_copies_taken_at_import():
    import inspect

    ref = gradecheck.reference("slmcourse.attention.alibi_slopes")
    want = ref(6)
    # the function under the package's argument gate (checks.typed), which a student can reach via __wrapped__
    target = inspect.unwrap(ref_attention.alibi_slopes)
    original = target.__code__
    try:
        target.__code__ = (lambda n_heads: torch.zeros(n_heads)).__code__
        assert not torch.equal(ref_attention.alibi_slopes(6), want)   # the tampering took effect
        assert torch.equal(ref(6), want)                               # the reference did not follow it
    finally:
        target.__code__ = original


def test_sealed_module_refuses_assignment():
    import importlib
    import types

    fresh = types.ModuleType("probe")
    fresh.__class__ = gradecheck._Sealed
    with pytest.raises(AttributeError, match="sealed"):
        fresh.checked = None
    assert importlib.import_module("slmcourse.gradecheck").intact()


# ----------------------------------------------------------------------------------------------
# the sandbox itself (a plain Python process in the same bubblewrap jail as the kernel)
# ----------------------------------------------------------------------------------------------

PROBE = r"""
import json, os, socket, sys
report = {}
def can_read(p):
    try:
        open(p, "rb").read(1); return True
    except OSError:
        return False
def can_write(p):
    try:
        with open(p, "w") as fh: fh.write("x")
        return True
    except OSError:
        return False
report["solutions"] = os.path.exists(sys.argv[1] + "/solutions")
report["root_listing"] = sorted(os.listdir(sys.argv[1])) if os.path.isdir(sys.argv[1]) else None
report["other_student"] = can_read(sys.argv[2])
report["write_scratch"] = can_write("mine.txt")
report["write_course"] = can_write(sys.argv[3] + "/pwned.txt")
report["write_package"] = can_write(sys.argv[4] + "/pwned.py")
report["home"] = os.environ.get("HOME")
report["secret_env"] = "SLM_TEST_SECRET" in os.environ
try:
    socket.create_connection(("127.0.0.1", 22), timeout=2); report["network"] = True
except OSError:
    report["network"] = False
report["pids"] = len([p for p in os.listdir("/proc") if p.isdigit()])
print(json.dumps(report))
"""


@needs_sandbox
def test_sandbox_sees_and_writes_only_its_folder(tmp_path):
    course = tmp_path / "course"
    scratch = course / "autograded" / "s1" / "energy"
    other = course / "submitted" / "s2" / "energy" / "energy.ipynb"
    other.parent.mkdir(parents=True)
    other.write_text("{}")
    (course / "solutions").mkdir()
    box = sandbox.prepare(scratch, sandbox.Limits(memory_bytes=512 * 1024 ** 2), label="probe")
    try:
        import slmcourse
        package = Path(slmcourse.__file__).parent
        command = [*sandbox._bwrap_arguments(scratch, box.runtime), "--", sys.executable, "-P", "-s", "-c", PROBE,
                   str(ROOT), str(other), str(course), str(package)]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120,
                                env={**os.environ, "SLM_TEST_SECRET": "1"})
    finally:
        box.cleanup()
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["solutions"] is False and report["other_student"] is False
    assert set(report["root_listing"]) <= {".venv", "utils"}, report["root_listing"]
    assert report["write_scratch"] is True and (scratch / "mine.txt").is_file()
    # the folders above the scratch folder exist inside the sandbox only as empty mount points in its own
    # throw-away root: a write there may succeed in the sandbox but never reaches the real course
    assert report["write_package"] is False
    assert not (course / "pwned.txt").exists() and not (package / "pwned.py").exists()
    assert report["home"] == str(scratch.resolve()) and report["secret_env"] is False
    assert report["network"] is False and report["pids"] <= 3


def test_kernelspec_loads_the_checks_first(tmp_path):
    box = sandbox.prepare(tmp_path / "scratch", sandbox.Limits(), label="spec")
    try:
        spec = json.loads((box.root / "share" / "kernels" / sandbox.KERNEL_NAME / "kernel.json").read_text())
    finally:
        box.cleanup()
    command = spec["argv"][-1]
    assert "exec_lines" in command and "slmcourse.gradecheck" in command and " -P -s " in command
    assert "--clearenv" in command and "IPYTHONDIR" in command


# ----------------------------------------------------------------------------------------------
# no sandbox: refuse unless --no-sandbox
# ----------------------------------------------------------------------------------------------

def test_refuses_without_a_sandbox(tmp_path, monkeypatch, capsys):
    from test_grading import make_course

    course = make_course(tmp_path / "course", ["energy"])
    (tmp_path / "export").mkdir()
    monkeypatch.setattr(sandbox, "sandbox_problem", lambda: "bubblewrap is not installed (faked)")
    argv = ["--course-dir", str(course), "collect-and-grade", "energy", str(tmp_path / "export"),
            "--out", str(tmp_path / "report")]
    assert grade.main(argv) == 2
    err = capsys.readouterr().err
    assert "cannot sandbox" in err and "--no-sandbox" in err and "solutions/" in err
    assert not (tmp_path / "report").exists()
    # with the flag it grades (an empty folder here) and says what that risks
    assert grade.main(argv + ["--no-sandbox"]) == 0
    assert "WITHOUT a sandbox" in capsys.readouterr().err


def test_review_notes_name_suspicious_code():
    release = {"cells": [{"cell_type": "code", "source": "import subprocess  # the Colab cell", "metadata": {}}]}
    nb = {"cells": [release["cells"][0],
                    {"cell_type": "code", "metadata": {}, "source": "import slmcourse.gradecheck as g\nget_ipython()"}]}
    notes = grade.suspicious_code(nb, release)
    assert any("gradecheck" in n for n in notes) and any("get_ipython" in n for n in notes)
    assert not any("subprocess" in n for n in notes), "cells given by the release do not count"


# ----------------------------------------------------------------------------------------------
# the adversarial batch (slow)
# ----------------------------------------------------------------------------------------------

NAME = "attention_variants"
ADVERSARIES = {  # student id -> (file, expected status, expected score, a text each note must hold)
    "1001": ("honest", "graded", "14", []),
    "1002": ("reference", "graded", "0", ["test_gqa 0/5 (ForbiddenCall: forbidden: grouped_query_attention uses "
                                          "slmcourse.attention.",
                                          "test_sliding_window 0/4 (CheckerTampered", "scaled_dot_product"]),
    "1003": ("escape", "graded", "0", ["review: the code uses"]),
    "1004": ("liar", "graded", "0", ["test_gqa 0/5 (NotARealResult", "test_sliding_window 0/4 (NotARealResult"]),
    # endless output / a kernel that ignores the interrupt: after the cell's timeout nbgrader gets no more output
    # (IOPub timeout) and gives up on the notebook, which is reported as "grading failed" (0), the batch going on
    "1005": ("bombs", "grading failed", "0", ["nbgrader stopped", "os.fork"]),
    "1006": ("hang", "grading failed", "0", []),
}
# Every graded cell of these submissions takes < 0.5 s (sandboxed: torch is imported before the first cell, and
# kernel start-up has its own 300 s limit); 10 s leaves 20x for a busy machine, and is how long the hang and the
# endless output last before nbgrader gives up on them. The per-submission time limit stays the backstop.
CELL_TIMEOUT, TIME_LIMIT, MEMORY_MIB = 10, 150, 768


def adversarial_notebook(kind: str, release_nb: dict, solution_nb: dict, course: Path) -> dict:
    from test_grading import grade_id, student_notebook, source

    nb = student_notebook(release_nb, solution_nb)
    honest = {grade_id(c): source(c) for c in nb["cells"] if grade_id(c)}
    text = (ROOT / "tests" / "adversarial" / f"{kind}.py").read_text()
    for part in re.split(r"^# %% ", text, flags=re.MULTILINE)[1:]:
        gid, code = part.split("\n", 1)
        code = code.replace("__COURSE__", str(course)).replace("__ROOT__", str(ROOT))
        code = code.replace("__HONEST__", honest[gid.strip()])
        next(c for c in nb["cells"] if grade_id(c) == gid.strip())["source"] = code
    return nb


def fingerprint(folder: Path, skip: tuple[str, ...] = ()) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and not any(s in p.parts for s in skip)}


def run_adversarial_batch(folder, env=None) -> dict:
    """The batch of tests/adversarial/ through `utils/grade.py collect-and-grade`, twice (one of the session's
    grading runs, tests/conftest.py: a process of its own, with the environment taken when the runs started);
    after each round, what the checks below read."""
    from nbgrader.api import Gradebook

    from test_grading import make_course, read_nb, write_nb

    tmp_path = Path(folder)
    course = make_course(tmp_path / "course", [NAME], timeout=CELL_TIMEOUT)
    grade.nbgrader(course, "generate_assignment", NAME, "--force")
    release_nb = read_nb(course / "assignments" / NAME / f"{NAME}.ipynb")
    solution_nb = read_nb(course / "solutions" / NAME / f"{NAME}.ipynb")
    export = tmp_path / "export"
    for sid, (kind, *_ignored) in ADVERSARIES.items():
        write_nb(adversarial_notebook(kind, release_nb, solution_nb, course), export / f"{kind}_{sid}_{NAME}.ipynb")
    earlier = course / "submitted" / "9999" / NAME / f"{NAME}.ipynb"     # graded in an earlier batch
    write_nb(adversarial_notebook("honest", release_nb, solution_nb, course), earlier)
    protected = {"solutions": fingerprint(course / "solutions"), "root": fingerprint(ROOT / "solutions"),
                 "config": (course / "nbgrader_config.py").read_bytes(), "earlier": earlier.read_bytes()}
    out = tmp_path / "report"
    argv = ["--course-dir", str(course), "collect-and-grade", NAME, str(export), "--out", str(out),
            "--time-limit", str(TIME_LIMIT), "--memory-limit", str(MEMORY_MIB)]

    rounds = []
    for _ in range(2):
        run = subprocess.run([sys.executable, str(ROOT / "utils" / "grade.py"), *argv], capture_output=True, text=True,
                             env=env or os.environ.copy())
        state = {"code": run.returncode, "log": run.stdout[-3000:] + run.stderr[-3000:]}
        rounds.append(state)
        if run.returncode != 0:
            break
        state["csv"] = (out / "grades.csv").read_text()
        state["solutions"] = fingerprint(course / "solutions")
        state["root"] = fingerprint(ROOT / "solutions")
        state["config"] = (course / "nbgrader_config.py").read_bytes()
        state["earlier"] = earlier.read_bytes()
        state["autograded_9999"] = (course / "autograded" / "9999").exists()
        state["pwned"] = (course / "pwned.txt").exists() or (ROOT / "pwned.txt").exists()
        state["honest_filed"] = (course / "submitted" / "1001" / NAME / f"{NAME}.ipynb").read_bytes() == \
            (export / f"honest_1001_{NAME}.ipynb").read_bytes()
        with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
            state["code_score"] = {sid: float(gb.find_submission(NAME, sid).code_score) for sid in ("1001", "1003")}
        state["escape"] = (course / "autograded" / "1003" / NAME / "escape-report.txt").read_text()
    return {"protected": protected, "rounds": rounds}


def background_jobs(item):
    """For tests/conftest.py: the batch mostly waits (a hung kernel, endless output), so it starts first."""
    if getattr(item, "originalname", None) == "test_adversarial_batch_twice" and sandbox.sandbox_problem() is None:
        yield 0, "sandbox:adversarial", run_adversarial_batch


@needs_sandbox
@pytest.mark.slow
def test_adversarial_batch_twice(grading_jobs):
    batch = grading_jobs.result("sandbox:adversarial", run_adversarial_batch)
    protected, rounds = batch["protected"], batch["rounds"]
    assert len(rounds) == 2 and all(r["code"] == 0 for r in rounds), rounds[-1]["log"]
    for state in rounds:
        rows = {r["student_id"]: r for r in csv.DictReader(state["csv"].splitlines())}
        got = {sid: (rows[sid]["status"], rows[sid]["autograded_score"]) for sid in ADVERSARIES}
        assert got == {sid: (status, score) for sid, (_, status, score, _) in ADVERSARIES.items()}, \
            "\n".join(f"{sid}: {r['status']} {r['autograded_score']} {r['notes']}" for sid, r in rows.items())
        for sid, (*_, notes) in ADVERSARIES.items():
            for text in notes:
                assert text in rows[sid]["notes"], (sid, text, rows[sid]["notes"])
        # nothing outside each scratch folder changed
        assert state["solutions"] == protected["solutions"]
        assert state["root"] == protected["root"]
        assert state["config"] == protected["config"]
        assert state["earlier"] == protected["earlier"] and not state["autograded_9999"]
        assert not state["pwned"]
        assert state["honest_filed"]
        assert state["code_score"]["1003"] == 0
        assert state["code_score"]["1001"] == 14
        escape = state["escape"]
        assert "network False" in escape and "solutions" not in escape and "gradebook" not in escape, escape
    assert rounds[0]["csv"] == rounds[1]["csv"], "grading the batch twice must give the same grades.csv"
