"""`make bench`: what each lesson costs on this machine, and how fast the bundled models load.

Prints, and writes to course/BUDGET.md (beside the lessons, linked from the README):
- every lesson notebook's and assignment solution's execution wall time and the kernel's peak memory
  (targets: < 2 GB, mybinder.org);
- the cold load (conversion from GGUF into an empty cache) and warm load of each bundled model (target warm < 5 s);
- then runs utils/deployment_figures.py (lesson 12's figures) when it exists.
Figures, not assertions: a slower machine is reported, not failed.
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "course"
PEAK_CELL = "import resource, sys\nprint('PEAK_RSS_KIB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
LOAD_SNIPPET = "import time, slmcourse; t = time.perf_counter(); slmcourse.load({name!r}, device='cpu'); print(time.perf_counter() - t)"


def run_notebook(path: Path) -> tuple[float, float]:
    """(seconds, peak MiB) of executing a copy of the notebook in a fresh kernel."""
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(PEAK_CELL))
    client = NotebookClient(nb, timeout=1800, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - start
    text = "".join(o.get("text", "") for o in nb.cells[-1].outputs)
    kib = int(text.split("PEAK_RSS_KIB")[1].split()[0])
    return seconds, kib / 1024


def load_time(name: str, cache: str | None = None) -> float:
    env = dict(os.environ)
    if cache:
        env["SLMCOURSE_CACHE"] = cache
    out = subprocess.run([sys.executable, "-c", LOAD_SNIPPET.format(name=name)], env=env, check=True,
                         capture_output=True, text=True).stdout
    return float(out.strip().splitlines()[-1])


def stamped(path: Path) -> tuple[float, float] | None:
    """(seconds, peak MiB) recorded by `make outputs` when it executed this notebook on an idle machine."""
    info = nbformat.read(path, as_version=4).metadata.get("slmcourse", {}).get("execution") or {}
    if "seconds" in info and info.get("peak_mib") is not None:
        return float(info["seconds"]), float(info["peak_mib"])
    return None


def main(argv: list[str] | None = None) -> int:
    """`--from-stamps`: take each notebook's figures from its `make outputs` stamp instead of running it
    again (the same idle-machine measurement, made while producing the committed outputs)."""
    argv = sys.argv[1:] if argv is None else argv
    from_stamps = "--from-stamps" in argv
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    load = os.getloadavg()[0]
    results = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
               "notebooks": {}, "models": {}}
    print(f"machine: {results['machine']}; load average {load:.2f}")
    if load > 0.5 * (os.cpu_count() or 1):
        print("warning: the machine is busy; the figures will be too slow (run it on an idle machine)")
    groups = {"Lesson notebooks": sorted((ROOT / "course").glob("[0-9][0-9]_*.ipynb")),
              "Assignment solutions": sorted((ROOT / "solutions").glob("*/*.ipynb"))}
    for title, paths in groups.items():
        print(f"\n{title} ({'from the make-outputs stamps' if from_stamps else 'fresh kernel each'}):")
        for path in paths:
            figures = stamped(path) if from_stamps else None
            seconds, peak = figures if figures else run_notebook(path)
            results["notebooks"][str(path.relative_to(ROOT))] = {"seconds": round(seconds, 1), "peak_mib": round(peak)}
            flag = "" if peak < 2048 else "  <-- over mybinder.org's 2 GB"
            print(f"  {path.name:<40} {seconds:7.1f} s   peak {peak:7.0f} MiB{flag}", flush=True)
    print("\nBundled models (cold = convert into an empty cache, warm = load from the cache):")
    from slmcourse.catalogue import names

    for name in names(bundled=True):
        with tempfile.TemporaryDirectory() as empty:
            cold = load_time(name, cache=empty)
        warm = min(load_time(name) for _ in range(2))
        results["models"][name] = {"cold_s": round(cold, 1), "warm_s": round(warm, 2)}
        print(f"  {name:<20} cold {cold:6.1f} s   warm {warm:5.2f} s", flush=True)
    (ROOT / "build").mkdir(exist_ok=True)
    (ROOT / "build" / "budget.json").write_text(json.dumps(results, indent=2))
    how = ("notebook figures from the stamps of `make outputs` (its idle-machine run); " if from_stamps else "")
    lines = ["# Measured budget", "", f"Measured by `make bench` ({how}load average {load:.2f} at the start) on: "
             f"{results['machine']}.", "",
             "| notebook | run time (s) | peak memory (MiB) |", "| --- | ---: | ---: |"]
    lines += [f"| {n} | {r['seconds']} | {r['peak_mib']} |" for n, r in results["notebooks"].items()]
    lines += ["", "| bundled model | cold load (s) | warm load (s) |", "| --- | ---: | ---: |"]
    lines += [f"| {n} | {r['cold_s']} | {r['warm_s']} |" for n, r in results["models"].items()]
    (OUT / "BUDGET.md").write_text("\n".join(lines) + "\n")
    print(f"\nwritten: {OUT / 'BUDGET.md'}")
    figures = ROOT / "utils" / "deployment_figures.py"
    if figures.exists():
        print("\nDeployment figures (lesson 12):", flush=True)
        subprocess.run([sys.executable, str(figures)], check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
