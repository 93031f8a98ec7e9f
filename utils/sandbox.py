"""The grading sandbox: each submission's kernel runs inside bubblewrap, seeing almost nothing.

Student code is untrusted. `utils/grade.py` autogrades every submission through nbgrader as usual
(gradebook, feedback, formgrader unchanged), but the *kernel* that executes the student's notebook is
started by a kernelspec whose command is bubblewrap (https://github.com/containers/bubblewrap, Debian's
`bubblewrap`), so the student's code runs with:

- the system (/usr, the Python installation, the course's virtual environment, the `slmcourse` package
  and the bundled-model cache) **read-only**, and nothing else of the machine: no `solutions/`, no
  gradebook, no `submitted/`, `autograded/` or `feedback/` of other students, no instructor home;
- **one writable folder**: the scratch copy nbgrader makes of this one submission
  (`autograded/<student>/<assignment>/`), plus a private /tmp that vanishes with the kernel;
- **no network** (a new, empty network namespace), its own PID namespace (it cannot see or signal the
  grader), and it dies with the grader;
- **limits**: memory (a cgroup when the machine offers one, else the address-space rlimit), number of
  processes (a pids cgroup, else RLIMIT_NPROC), CPU seconds and the size of files it writes (rlimits),
  and wall time (nbgrader's per-cell timeout plus a per-submission timeout in grade.py).

The kernel talks to nbgrader over Unix sockets (ZeroMQ's ipc transport) in a private runtime folder
that is bound into the sandbox, since TCP on the grader's loopback is unreachable from the new network
namespace.

    sandbox_problem()              -> None when bubblewrap works here, else why not
    prepare(workdir, limits)       -> a Sandbox: the kernelspec folder, runtime folder, nbgrader arguments
"""
from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

KERNEL_NAME = "slm-sandbox"
# Read-only system paths the kernel needs (those missing on a machine are skipped).
SYSTEM_PATHS = ("/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/etc/alternatives", "/etc/ld.so.cache",
                "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime", "/etc/fonts", "/etc/passwd",
                "/etc/group", "/etc/nsswitch.conf", "/etc/ssl", "/etc/mime.types")
CGROUP_V1 = Path("/sys/fs/cgroup")
ADDRESS_SPACE_MARGIN = 2 * 1024 ** 3
# Run by the kernel before any cell: captures the grader's checks (torch.allclose, ...) before student code.
EXEC_LINES = "import importlib as _i; _i.import_module('slmcourse.gradecheck').seal(); del _i"


@dataclass
class Limits:
    memory_bytes: int = 3 * 1024 ** 3      # RAM (cgroup) or address space (rlimit fallback, x3)
    processes: int = 256                   # processes + threads (PyTorch and the kernel use ~40)
    cpu_seconds: int = 900                 # CPU time of the kernel
    file_bytes: int = 256 * 1024 ** 2      # the largest file it may write
    open_files: int = 1024


@dataclass
class Sandbox:
    root: Path                             # temporary folder holding the kernelspec and the runtime folder
    workdir: Path
    limits: Limits
    cgroups: list[Path] = field(default_factory=list)

    @property
    def runtime(self) -> Path:
        return self.root / "runtime"

    def environment(self, env: dict[str, str]) -> dict[str, str]:
        """The environment for the nbgrader process: our kernelspec first on JUPYTER_PATH."""
        env = dict(env)
        env["JUPYTER_PATH"] = os.pathsep.join([str(self.root / "share"), env.get("JUPYTER_PATH", "")]).rstrip(os.pathsep)
        env["JUPYTER_RUNTIME_DIR"] = str(self.runtime)
        return env

    def nbgrader_arguments(self) -> list[str]:
        # the kernel imports torch and the grader's checks before it answers: allow for a busy machine
        return [f"--Execute.kernel_name={KERNEL_NAME}", "--Execute.startup_timeout=300", "--KernelManager.transport=ipc",
                f"--KernelManager.connection_file={self.runtime / 'kernel.json'}"]

    def cleanup(self) -> None:
        for group in self.cgroups:
            _kill_and_remove_cgroup(group)
        shutil.rmtree(self.root, ignore_errors=True)


def bwrap() -> str | None:
    return shutil.which("bwrap")


def sandbox_problem() -> str | None:
    """None when bubblewrap is installed and can start a sandbox here; otherwise what is wrong."""
    if not sys.platform.startswith("linux"):
        return f"the grading sandbox needs Linux (bubblewrap); this is {sys.platform}"
    exe = bwrap()
    if not exe:
        return "bubblewrap is not installed (Debian/Ubuntu: apt-get install bubblewrap)"
    probe = [exe, *_mounts_for_probe(), "--unshare-all", "--die-with-parent", "--", "/bin/true"]
    try:
        result = subprocess.run(probe, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"bubblewrap could not start: {err}"
    if result.returncode != 0:
        return ("bubblewrap could not create a sandbox (user namespaces disabled?): "
                + (result.stderr.strip().splitlines() or ["no message"])[-1])
    return None


def _mounts_for_probe() -> list[str]:
    args = []
    for path in SYSTEM_PATHS:
        args += ["--ro-bind-try", path, path]
    return args + ["--proc", "/proc", "--dev", "/dev"]


def read_only_paths() -> list[Path]:
    """What a submission's kernel may read besides the system: Python, the venv, slmcourse, the model cache."""
    import slmcourse
    from slmcourse.bundled import cache_dir

    paths = [Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve(), Path(slmcourse.__file__).resolve().parent]
    try:
        paths.append(Path(cache_dir()).resolve())
    except Exception:  # no cache yet: the kernel simply cannot load bundled models
        pass
    # the model packages live in the venv's site-packages (already covered by sys.prefix)
    unique = []
    for path in paths:
        if path.exists() and not any(path.is_relative_to(p) for p in unique):
            unique = [p for p in unique if not p.is_relative_to(path)] + [path]
    return unique


def _bwrap_arguments(workdir: Path, runtime: Path) -> list[str]:
    args = [bwrap(), "--tmpfs", "/tmp"]       # first: later binds may lie below /tmp
    for path in SYSTEM_PATHS:
        args += ["--ro-bind-try", path, path]
    for path in read_only_paths():
        args += ["--ro-bind", str(path), str(path)]
    args += ["--bind", str(workdir), str(workdir), "--bind", str(runtime), str(runtime),
             "--proc", "/proc", "--dev", "/dev",
             "--unshare-all", "--die-with-parent", "--new-session", "--chdir", str(workdir),
             # nothing of the grader's environment (tokens, paths) reaches student code; JPY_PARENT_PID
             # must go anyway: its parent is invisible in the new PID namespace and ipykernel would exit
             "--clearenv", "--setenv", "PATH", f"{Path(sys.executable).parent}:/usr/bin:/bin",
             "--setenv", "LANG", "C.UTF-8", "--setenv", "PYTHONNOUSERSITE", "1",
             "--setenv", "IPYTHONDIR", "/tmp/ipython",   # not the submission's folder (startup files)
             "--setenv", "HOME", str(workdir), "--setenv", "TMPDIR", "/tmp",
             "--setenv", "MPLCONFIGDIR", "/tmp/matplotlib", "--setenv", "HF_HOME", "/tmp/huggingface",
             "--setenv", "HF_HUB_OFFLINE", "1", "--setenv", "TOKENIZERS_PARALLELISM", "false",
             "--setenv", "NBGRADER_EXECUTION", "autograde", "--setenv", "SLMCOURSE_SANDBOXED", "1"]
    try:
        from slmcourse.bundled import cache_dir
        args += ["--setenv", "SLMCOURSE_CACHE", str(Path(cache_dir()).resolve())]
    except Exception:
        pass
    return args


def _cgroup_root(controller: str) -> Path | None:
    """A writable cgroup-v1 hierarchy for `controller` (memory, pids), or None."""
    base = CGROUP_V1 / controller
    if base.is_dir() and os.access(base, os.W_OK):
        return base
    return None


def _kill_and_remove_cgroup(group: Path) -> None:
    try:
        for pid in (group / "cgroup.procs").read_text().split():
            try:
                os.kill(int(pid), 9)
            except (ProcessLookupError, PermissionError, ValueError):
                pass
        group.rmdir()
    except OSError:
        pass


def _make_cgroups(limits: Limits, name: str) -> tuple[list[Path], dict[str, bool]]:
    groups, have = [], {"memory": False, "pids": False}
    memory = _cgroup_root("memory")
    if memory is not None:
        try:
            group = memory / name
            group.mkdir(exist_ok=True)
            (group / "memory.limit_in_bytes").write_text(str(limits.memory_bytes + ADDRESS_SPACE_MARGIN))
            try:  # no swapping out of the limit where swap accounting exists
                (group / "memory.memsw.limit_in_bytes").write_text(str(limits.memory_bytes + ADDRESS_SPACE_MARGIN))
            except OSError:
                pass
            groups.append(group)
            have["memory"] = True
        except OSError:
            pass
    pids = _cgroup_root("pids")
    if pids is not None:
        try:
            group = pids / name
            group.mkdir(exist_ok=True)
            (group / "pids.max").write_text(str(limits.processes))
            groups.append(group)
            have["pids"] = True
        except OSError:
            pass
    return groups, have


def prepare(workdir: Path, limits: Limits | None = None, label: str = "submission") -> Sandbox:
    """A sandbox for one submission whose scratch folder is `workdir` (created if missing)."""
    limits = limits or Limits()
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="slm-sandbox-"))
    sandbox = Sandbox(root=root, workdir=workdir, limits=limits)
    sandbox.runtime.mkdir(mode=0o700)
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in label)[:40]
    sandbox.cgroups, have = _make_cgroups(limits, f"slm-grade-{safe}-{os.getpid()}-{root.name[-8:]}")
    # Memory: the address-space rlimit makes an oversized allocation fail with a MemoryError the
    # notebook can report (PyTorch reserves ~1.5 GiB of address space beyond what it touches, hence the
    # margin); the memory cgroup, when there is one, is the hard backstop at the same figure.
    rlimits = [f"--cpu={limits.cpu_seconds}", f"--fsize={limits.file_bytes}", f"--nofile={limits.open_files}",
               "--core=0", f"--as={limits.memory_bytes + ADDRESS_SPACE_MARGIN}"]
    if not have["pids"] and os.geteuid() != 0:
        rlimits.append(f"--nproc={limits.processes}")
    command = [shutil.which("prlimit") or "prlimit", *rlimits, "--",
               *_bwrap_arguments(workdir, sandbox.runtime),
               # -P -s: nothing the submission's folder holds is importable in place of a real module;
               # the grader's checks are imported before the first cell (slmcourse/gradecheck.py)
               "--", sys.executable, "-P", "-s", "-m", "ipykernel_launcher", "-f", "{connection_file}",
               "--HistoryManager.hist_file=:memory:", "--IPKernelApp.ignore_cwd=True",
               f"--IPKernelApp.exec_lines={EXEC_LINES}"]
    enter = "".join(f"echo $$ > {shlex.quote(str(g / 'cgroup.procs'))} && " for g in sandbox.cgroups)
    argv = ["/bin/sh", "-c", enter + "exec " + " ".join(shlex.quote(a) for a in command)]
    spec = root / "share" / "kernels" / KERNEL_NAME
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": argv, "display_name": "Python 3 (grading sandbox)", "language": "python",
        "metadata": {"debugger": False}}, indent=1))
    return sandbox


def describe() -> str:
    """One paragraph for the instructor: what the sandbox protects here."""
    problem = sandbox_problem()
    if problem:
        return f"no grading sandbox: {problem}"
    memory = "cgroup" if _cgroup_root("memory") else "address-space rlimit"
    pids = "cgroup" if _cgroup_root("pids") else ("RLIMIT_NPROC" if os.geteuid() != 0 else "none (root, no pids cgroup)")
    return (f"bubblewrap sandbox: read-only system and course environment, one writable scratch folder, "
            f"no network; memory limit by {memory}, process limit by {pids}")
