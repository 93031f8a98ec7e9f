"""`make outputs`: execute the lessons and assignment solutions in order, on an idle machine only,
and stamp each notebook with the facts of the machine that made its outputs.

    .venv/bin/python utils/make_outputs.py                       # every lesson, then every solution
    .venv/bin/python utils/make_outputs.py course/03_*.ipynb     # just these
    .venv/bin/python utils/make_outputs.py --check               # only report which stamps are missing/busy

Why: the committed outputs show measured times and rates, and the prose reads them. A notebook executed
while other programs compete for the CPU shows rates several times too low (lesson 3 once printed
1.3 tokens/s for a model that decodes at 25). So this command
- waits (up to --wait seconds) until the machine is idle before each notebook: the 1-minute load average
  at most --max-load per core, and other processes using less than --max-foreign percent of the CPUs;
- watches the other processes' CPU use *while* the notebook runs (our own process tree excluded: the
  kernel's own work is not "load"), and refuses to save outputs made while the machine was busy: it
  waits for idle again and re-runs, up to --retries times, then gives up on that notebook (exit 1);
- stamps notebook metadata `slmcourse.execution` with the date, cores, load before, other processes'
  mean and peak CPU share, torch threads, run time and versions; tests/test_committed_outputs.py
  refuses committed outputs without a clean stamp.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import threading
import time
from pathlib import Path

import nbformat
import psutil
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
STAMP_KEY = "slmcourse"
# What counts as idle (the test applies the same limits to the stamps).
MAX_LOAD_PER_CORE = 0.5
MAX_FOREIGN_CPU = 25.0  # percent of all CPUs used by other processes, averaged over the run


def default_notebooks() -> list[Path]:
    return sorted((ROOT / "course").glob("[0-9][0-9]_*.ipynb")) + sorted((ROOT / "solutions").glob("*/*.ipynb"))


def _own_pids() -> set[int]:
    me = psutil.Process()
    pids = {me.pid}
    try:
        pids |= {child.pid for child in me.children(recursive=True)}
    except psutil.Error:
        pass
    return pids


def foreign_cpu_percent(interval: float = 1.0) -> float:
    """Share of all CPUs (0-100) used by processes outside this one and its children over `interval` s."""
    procs = {}
    for proc in psutil.process_iter(["pid"]):
        try:
            proc.cpu_percent(None)
            procs[proc.pid] = proc
        except psutil.Error:
            continue
    time.sleep(interval)
    own = _own_pids()
    total = 0.0
    for pid, proc in procs.items():
        if pid in own:
            continue
        try:
            total += proc.cpu_percent(None)
        except psutil.Error:
            continue
    return total / psutil.cpu_count()


def load_per_core() -> float:
    return os.getloadavg()[0] / psutil.cpu_count()


def wait_for_idle(max_load: float, max_foreign: float, wait: float) -> tuple[bool, float, float]:
    """Block until the machine is idle or `wait` seconds pass. Returns (idle, load per core, foreign %)."""
    deadline = time.monotonic() + wait
    while True:
        foreign = foreign_cpu_percent(2.0)
        load = load_per_core()
        # the load average lags by a minute: accept a higher one when nothing else runs right now
        if foreign < max_foreign and (load <= max_load or foreign < max_foreign / 5):
            return True, load, foreign
        if time.monotonic() > deadline:
            return False, load, foreign
        print(f"  waiting for an idle machine: load {load:.2f} per core, other processes {foreign:.0f} % CPU",
              flush=True)
        time.sleep(10)


class ForeignLoadMonitor(threading.Thread):
    """Samples the other processes' CPU share every second while a notebook runs."""

    def __init__(self):
        super().__init__(daemon=True)
        self.samples: list[float] = []
        self._halt = threading.Event()

    def run(self):
        while not self._halt.is_set():
            self.samples.append(foreign_cpu_percent(1.0))

    def stop(self) -> tuple[float, float]:
        self._halt.set()
        self.join()
        if not self.samples:
            return 0.0, 0.0
        return sum(self.samples) / len(self.samples), max(self.samples)


PEAK_CELL = "import resource\nprint('PEAK_RSS_KIB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"


def execute(path: Path, timeout: int = 1800) -> tuple[nbformat.NotebookNode, float, float, float, float]:
    """Execute a copy of the notebook; returns (notebook, seconds, foreign mean %, foreign max %, peak MiB).

    The kernel's peak memory is read by one extra cell appended for the run and removed afterwards."""
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(PEAK_CELL))
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    monitor = ForeignLoadMonitor()
    monitor.start()
    start = time.perf_counter()
    try:
        client.execute()
    finally:
        seconds = time.perf_counter() - start
        mean, peak = monitor.stop()
    probe = nb.cells.pop()
    text = "".join(o.get("text", "") for o in probe.outputs)
    peak_mib = int(text.split("PEAK_RSS_KIB")[1].split()[0]) / 1024 if "PEAK_RSS_KIB" in text else float("nan")
    return nb, seconds, mean, peak, peak_mib


def stamp(nb, seconds: float, load_before: float, foreign_mean: float, foreign_max: float,
          peak_mib: float = float("nan")) -> None:
    import torch

    nb.metadata.setdefault(STAMP_KEY, {})["execution"] = {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {psutil.cpu_count()} cores",
        "cores": psutil.cpu_count(),
        "load_per_core_before": round(load_before, 2),
        "other_processes_cpu_percent_mean": round(foreign_mean, 1),
        "other_processes_cpu_percent_max": round(foreign_max, 1),
        "torch_threads": torch.get_num_threads(),
        "seconds": round(seconds, 1),
        "peak_mib": round(peak_mib),
        "python": platform.python_version(),
        "torch": torch.__version__,
    }


def stamp_problem(nb, max_load: float = MAX_LOAD_PER_CORE, max_foreign: float = MAX_FOREIGN_CPU) -> str | None:
    """Why a notebook's committed outputs cannot be trusted, or None when its stamp is clean."""
    info = nb.metadata.get(STAMP_KEY, {}).get("execution")
    if not info:
        return "no execution stamp: run `make outputs` on an idle machine"
    if info["other_processes_cpu_percent_mean"] > max_foreign:
        return (f"executed while other processes used {info['other_processes_cpu_percent_mean']} % of the CPUs "
                f"(limit {max_foreign} %)")
    if info["load_per_core_before"] > max_load and info["other_processes_cpu_percent_mean"] > max_foreign / 5:
        return f"executed on a busy machine (load {info['load_per_core_before']} per core before it started)"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--max-load", type=float, default=MAX_LOAD_PER_CORE,
                        help="idle means a 1-minute load average at most this per core (default %(default)s)")
    parser.add_argument("--max-foreign", type=float, default=MAX_FOREIGN_CPU,
                        help="... and other processes below this %% of the CPUs (default %(default)s)")
    parser.add_argument("--wait", type=float, default=900, help="seconds to wait for idle (default %(default)s)")
    parser.add_argument("--retries", type=int, default=2, help="re-runs after a busy run (default %(default)s)")
    parser.add_argument("--check", action="store_true", help="only report the stamps; execute nothing")
    args = parser.parse_args(argv)
    paths = [p.resolve() for p in args.notebooks] or default_notebooks()
    missing = [p for p in paths if not p.is_file()]
    if missing:
        print("no such notebook: " + ", ".join(map(str, missing)), file=sys.stderr)
        return 2
    if args.check:
        bad = 0
        for path in paths:
            problem = stamp_problem(nbformat.read(path, as_version=4), args.max_load, args.max_foreign)
            print(f"{path.relative_to(ROOT)}: {problem or 'ok'}")
            bad += problem is not None
        return 1 if bad else 0
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    failed = []
    for path in paths:
        rel = path.relative_to(ROOT)
        saved = False
        for attempt in range(args.retries + 1):
            idle, load, foreign = wait_for_idle(args.max_load, args.max_foreign, args.wait)
            if not idle:
                print(f"{rel}: refused - the machine stayed busy (load {load:.2f} per core, other processes "
                      f"{foreign:.0f} % CPU) for {args.wait:.0f} s", flush=True)
                break
            print(f"{rel}: executing (load {load:.2f} per core) ...", flush=True)
            try:
                nb, seconds, mean, peak, peak_mib = execute(path)
            except Exception as err:  # a failing cell: report it, keep the committed file, go on
                print(f"{rel}: FAILED - {str(err).strip().splitlines()[-1][:300]}", flush=True)
                break
            if mean <= args.max_foreign:
                stamp(nb, seconds, load, mean, peak, peak_mib)
                nbformat.write(nb, path)
                print(f"{rel}: {seconds:.1f} s, peak {peak_mib:.0f} MiB, other processes {mean:.0f} % CPU on average "
                      "- saved", flush=True)
                saved = True
                break
            print(f"{rel}: other processes used {mean:.0f} % of the CPUs during the run - not saved"
                  + ("; retrying" if attempt < args.retries else ""), flush=True)
        if not saved:
            failed.append(rel)
    if failed:
        print("not executed cleanly: " + ", ".join(map(str, failed)), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
