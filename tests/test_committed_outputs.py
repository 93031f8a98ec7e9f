"""Committed outputs are true on the machine that made them: idle, and in line with the benchmark.

Strict nbval masks measured values (a rate differs from run to run), so on its own it cannot notice a
notebook executed on a loaded machine that prints 1.3 tokens/s for a model that decodes at 25. This test
reads the committed outputs themselves:

1. every lesson and solution carries the stamp of `make outputs` (utils/make_outputs.py), made while the
   machine was idle (other processes below the limit, a low load average);
2. its stamped run time agrees with `make bench`'s idle figure in course/BUDGET.md;
3. the measured rates a lesson prints agree with course/DEPLOYMENT.md (made by `make bench` too) within a
   stated tolerance, and the orderings the prose claims hold (the KV cache is faster than no cache,
   dynamic int8 decodes faster than fp32, ...).
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "utils"))
import make_outputs  # noqa: E402

NOTEBOOKS = make_outputs.default_notebooks()
# Run time: the stamped execution and make bench's measurement are both idle-machine figures; they may
# differ by kernel start-up and by cache state, not by a factor.
TIME_FACTOR, TIME_SLACK_S = 2.0, 20.0
# A measured rate in a lesson against DEPLOYMENT.md's figure for the same model and precision: the lesson
# times a different prompt and length, so only a factor is asked for (a loaded machine is off by 5-20x).
RATE_FACTOR = 2.5


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def output_text(path: Path) -> str:
    """All text a notebook's committed outputs show (streams and text/plain), in order."""
    nb = nbformat.read(path, as_version=4)
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                parts.append(out.get("text", ""))
            elif "data" in out and "text/plain" in out["data"]:
                parts.append(out["data"]["text/plain"])
    return "\n".join(parts)


def budget() -> dict[str, tuple[float, float]]:
    """course/BUDGET.md: notebook path -> (run time s, peak MiB)."""
    rows = {}
    for line in (ROOT / "course" / "BUDGET.md").read_text().splitlines():
        m = re.match(r"^\| (\S+\.ipynb) \| ([\d.]+) \| (\d+) \|", line)
        if m:
            rows[m.group(1)] = (float(m.group(2)), float(m.group(3)))
    return rows


def deployment() -> dict[str, dict[str, float]]:
    """course/DEPLOYMENT.md's table: precision -> {column header: value} (first number of each cell)."""
    lines = (ROOT / "course" / "DEPLOYMENT.md").read_text().splitlines()
    table = {}
    # the PyTorch precisions' table, then the real runtime's (lesson 13), keyed by their first column
    for header in (i for i, line in enumerate(lines) if line.startswith(("| precision", "| engine"))):
        names = [c.strip() for c in lines[header].strip("|").split("|")]
        for line in lines[header + 2:]:
            if not line.startswith("|"):
                break
            cells = [c.strip() for c in line.strip("|").split("|")]
            values = {}
            for name, cell in zip(names[1:], cells[1:]):
                m = re.match(r"-?[\d.]+", cell)
                if m:
                    values[name] = float(m.group())
            table[cells[0]] = values
    return table


def decode_rate(precision: str) -> float:
    row = deployment()[precision]
    return next(v for k, v in row.items() if k.startswith("decode (tokens/s"))


def find_number(text: str, pattern: str, path: Path) -> float:
    m = re.search(pattern, text)
    assert m, f"{rel(path)}: no output matches {pattern!r} (did the lesson's printed line change?)"
    return float(m.group(1).replace(",", ""))


# ----------------------------------------------------------------------------------------------
# 1-2: stamps and run times
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", NOTEBOOKS, ids=rel)
def test_outputs_were_made_on_an_idle_machine(path):
    problem = make_outputs.stamp_problem(nbformat.read(path, as_version=4))
    assert problem is None, f"{rel(path)}: {problem}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=rel)
def test_stamped_run_time_agrees_with_the_benchmark(path):
    info = nbformat.read(path, as_version=4).metadata.get("slmcourse", {}).get("execution")
    if not info:
        pytest.skip("no stamp (reported by the idle-machine test)")
    measured = budget().get(rel(path))
    assert measured, f"course/BUDGET.md has no row for {rel(path)}: run `make bench`"
    stamped, bench = info["seconds"], measured[0]
    assert stamped <= TIME_FACTOR * bench + TIME_SLACK_S and bench <= TIME_FACTOR * stamped + TIME_SLACK_S, (
        f"{rel(path)} ran {stamped} s for `make outputs` but {bench} s for `make bench`: one of them was made on a "
        "busy machine; re-run both on an idle one")


# Known to be over Binder's 2 GB, with the figure that was measured: a defect to fix, not a tolerance.
# (strict: once a fix brings it under the limit, the test says so and the entry must go.)
# notebooks known to be over the limit (strict xfail: the entry must go when the notebook is fixed); none today.
# Lesson 9 was here at 2112 MiB until it stopped reloading SmolLM2 for every variant.
OVER_BUDGET: dict[str, str] = {}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=rel)
def test_budget_records_every_notebook_under_the_memory_limit(request, path):
    if rel(path) in OVER_BUDGET:
        request.applymarker(pytest.mark.xfail(reason=f"over 2 GB: {OVER_BUDGET[rel(path)]}", strict=True))
    rows = budget()
    assert rel(path) in rows, f"course/BUDGET.md has no row for {rel(path)}: run `make bench`"
    assert rows[rel(path)][1] < 2048, f"{rel(path)} peaks at {rows[rel(path)][1]:.0f} MiB, over Binder's 2 GB"


# ----------------------------------------------------------------------------------------------
# 3: measured rates against DEPLOYMENT.md, and the orderings the prose claims
# ----------------------------------------------------------------------------------------------
# (notebook, regex whose group 1 is a SmolLM2 rate in tokens/s, DEPLOYMENT.md precision it compares with)
RATES = [
    ("course/00_setup.ipynb", r"(\d+) tokens in ([\d.]+) s on", "fp32"),
    ("course/01_what_is_an_slm.ipynb", r"tokens in [\d.]+ s -> ([\d.]+) tokens/s", "fp32"),
    ("course/03_tokens_and_generation.ipynb", r"with the KV cache:\s+[\d.]+ s \(([\d.]+) tokens/s\)", "fp32"),
    ("course/09_compression.ipynb", r"float32 \(as loaded\).*?([\d.]+) tokens/s", "fp32"),
    ("course/09_compression.ipynb", r"PyTorch dynamic int8.*?([\d.]+) tokens/s", "int8-dynamic"),
    ("course/12_deployment.ipynb", r"decode\s*: ([\d.]+) tokens/s", "fp32"),
    ("course/12_deployment.ipynb", r"fp32: decode ([\d.]+) tokens/s", "fp32"),
    ("course/12_deployment.ipynb", r"bf16: decode ([\d.]+) tokens/s", "bf16"),
    ("course/12_deployment.ipynb", r"int8: decode ([\d.]+) tokens/s", "int8-dynamic"),
    ("solutions/energy/energy.ipynb", r"measured: ([\d.]+) tokens/s", "fp32"),
    ("course/13_faster_decoding.ipynb", r"PyTorch fp32\s+\d+\s+([\d.]+) tokens/s", "fp32"),
    ("course/13_faster_decoding.ipynb", r"PyTorch int8 \(dynamic\)\s+\d+\s+([\d.]+) tokens/s", "int8-dynamic"),
    ("course/13_faster_decoding.ipynb", r"ONNX Runtime GenAI int4\s+\d+\s+([\d.]+) tokens/s", "ONNX Runtime GenAI int4"),
]
# (notebook, regex of the faster rate, regex of the slower rate, what the prose claims)
ORDERINGS = [
    ("course/03_tokens_and_generation.ipynb", r"with the KV cache:\s+[\d.]+ s \(([\d.]+) tokens/s\)",
     r"without the KV cache:\s+[\d.]+ s \(([\d.]+) tokens/s\)", "the KV cache makes generation faster"),
    ("course/09_compression.ipynb", r"PyTorch dynamic int8.*?([\d.]+) tokens/s",
     r"float32 \(as loaded\).*?([\d.]+) tokens/s", "dynamic int8 decodes faster than float32"),
    ("course/12_deployment.ipynb", r"int8: decode ([\d.]+) tokens/s", r"fp32: decode ([\d.]+) tokens/s",
     "dynamic int8 decodes faster than fp32"),
    ("course/12_deployment.ipynb", r"batch 4: .*throughput ([\d.]+) tokens/s", r"batch 1: .*throughput ([\d.]+) tokens/s",
     "batching raises throughput"),
]


def rate_in(text: str, pattern: str, path: Path) -> float:
    m = re.search(pattern, text)
    assert m, f"{rel(path)}: no output matches {pattern!r} (did the lesson's printed line change?)"
    if len(m.groups()) == 2:  # "<n> tokens in <s> s"
        return float(m.group(1)) / float(m.group(2))
    return float(m.group(1))


@pytest.mark.parametrize("notebook, pattern, precision", RATES, ids=[f"{n.split('/')[-1]}:{p}" for n, _, p in RATES])
def test_measured_rates_agree_with_the_deployment_figures(notebook, pattern, precision):
    path = ROOT / notebook
    rate, reference = rate_in(output_text(path), pattern, path), decode_rate(precision)
    assert reference / RATE_FACTOR <= rate <= reference * RATE_FACTOR, (
        f"{notebook} shows {rate} tokens/s where course/DEPLOYMENT.md measured {reference} ({precision}) on an "
        f"idle machine: executed on a busy machine? Re-run `make outputs` on an idle one")


@pytest.mark.parametrize("notebook, faster, slower, claim", ORDERINGS, ids=[o[3] for o in ORDERINGS])
def test_the_orderings_the_prose_claims_hold(notebook, faster, slower, claim):
    path = ROOT / notebook
    text = output_text(path)
    fast, slow = rate_in(text, faster, path), rate_in(text, slower, path)
    assert fast > slow, f"{notebook} claims {claim}, but its outputs show {fast} vs {slow} tokens/s"
