"""The assignments are fair and helpful (issue 19 point 6): what a student sees when a visible check fails
says what was expected and what came back, and the task texts ask for what the hidden tests check.

Reads the student release (assignments/) and the sources (solutions/) as JSON: no kernel, no model.
"""
from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENTS = sorted(p.name for p in (ROOT / "assignments").iterdir() if (p / f"{p.name}.ipynb").is_file())
# Assignments whose visible asserts do not carry messages yet (strict xfail: the mark must go once they do).
NOT_YET: set[str] = set()


def cells(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def source(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def visible_tests(name: str) -> dict[str, str]:
    """grade_id -> the visible part of each graded code cell of the student release."""
    out = {}
    for cell in cells(ROOT / "assignments" / name / f"{name}.ipynb"):
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell["cell_type"] == "code" and meta.get("grade"):
            out[meta["grade_id"]] = source(cell).split("### BEGIN HIDDEN TESTS")[0]
    return out


def silent_checks(code: str) -> list[str]:
    """The visible checks that would fail with a bare AssertionError or without saying what came back."""
    problems = []
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Assert):
            line = ast.get_source_segment(code, node).splitlines()[0]
            if node.msg is None:
                problems.append(f"no message: {line}")
            elif not (isinstance(node.msg, ast.JoinedStr)
                      and any(isinstance(v, ast.FormattedValue) for v in node.msg.values)):
                problems.append(f"message does not show what came back: {line}")
        elif isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) \
                and getattr(node.exc.func, "id", None) == "AssertionError" and not node.exc.args:
            problems.append(f"AssertionError without a message: {ast.get_source_segment(code, node)}")
    return problems


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.xfail(
    strict=True, reason="owned by issue 15: its visible asserts still lack messages")) if n in NOT_YET else n
    for n in ASSIGNMENTS])
def test_every_visible_assert_says_what_was_expected_and_what_came_back(name):
    tests = visible_tests(name)
    assert tests, f"{name}: no graded test cells"
    problems = [f"{gid}: {p}" for gid, code in tests.items() for p in silent_checks(code)]
    assert not problems, f"{name}:\n" + "\n".join(problems)


def test_the_checker_catches_a_bare_assert():
    assert silent_checks("assert f(1) == 2") == ["no message: assert f(1) == 2"]
    assert silent_checks('assert f(1) == 2, "f is wrong"')[0].startswith("message does not show")
    assert silent_checks('got = f(1)\nassert got == 2, f"expected 2, got {got}"') == []
    assert silent_checks("raise AssertionError()")


def _task_text(name: str, marker: str) -> str:
    for cell in cells(ROOT / "solutions" / name / f"{name}.ipynb"):
        if cell["cell_type"] == "markdown" and marker in source(cell):
            return source(cell)
    raise AssertionError(f"{name}: no markdown cell with {marker!r}")


def test_energy_text_asks_for_what_the_hidden_tests_check():
    """The hidden test of annual_kwh requires days=-1 to raise ValueError: the task must say so."""
    text = _task_text("energy", "**Task 4.**")
    assert re.search(r"negative[^.]*days", text), text
    hidden = next(source(c) for c in cells(ROOT / "solutions" / "energy" / "energy.ipynb")
                  if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == "test_annual_kwh")
    assert '{"days": -1}' in hidden.split("### BEGIN HIDDEN TESTS")[1]
    flops_text = _task_text("energy", "**Task 2.**")
    assert "peak" in flops_text and "power" in flops_text and "negative" in flops_text


def test_energy_text_matches_the_code():
    nb = cells(ROOT / "solutions" / "energy" / "energy.ipynb")
    for i, cell in enumerate(nb):
        said = re.search(r"We generate (\d+) tokens", source(cell))
        if said:
            ran = re.search(r"new_tokens=(\d+)", source(nb[i + 1]))
            assert ran and ran.group(1) == said.group(1), (said.group(0), ran and ran.group(0))
            return
    raise AssertionError("the energy assignment no longer says how many tokens it generates")


def test_energy_reports_energy_per_correct_answer():
    nb = cells(ROOT / "solutions" / "energy" / "energy.ipynb")
    text = "\n".join(source(c) for c in nb)
    assert "measured_accuracy" in text and "per correct answer" in text
    outputs = "".join(o.get("text", "") if isinstance(o.get("text", ""), str) else "".join(o["text"])
                      for c in nb if c["cell_type"] == "code" for o in c.get("outputs", []))
    assert "J per correct answer" in outputs


def test_size_vs_task_grades_scoring_interval_and_reading():
    graded = {c["metadata"]["nbgrader"]["grade_id"] for c in cells(ROOT / "solutions" / "size_vs_task" / "size_vs_task.ipynb")
              if c.get("metadata", {}).get("nbgrader", {}).get("grade")}
    assert {"test_scoring", "test_choose", "test_interval", "test_reading"} <= graded
    text = "\n".join(source(c) for c in cells(ROOT / "solutions" / "size_vs_task" / "size_vs_task.ipynb"))
    assert "slmcourse.ladder" in text and "run_result" in text and "lesson 10" in text.lower()
