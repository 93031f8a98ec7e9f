"""Install the course's pinned environment into the running interpreter's environment.

`make` calls this with `.venv/bin/python`. It reads requirements.txt, installs the packages above
the `# --no-deps` marker normally and those below it with `--no-deps`, then installs the helper
package `slmcourse` in editable mode. Standard library only: it runs before anything is installed.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MARKER = "# --no-deps"


def read_requirements(path: Path = ROOT / "requirements.txt") -> tuple[list[str], list[str]]:
    """Return (normal, no_deps) requirement lines of the pinned file."""
    normal: list[str] = []
    no_deps: list[str] = []
    target = normal
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if line.startswith(MARKER):
            target = no_deps
            continue
        if not line or line.startswith("#"):
            continue
        target.append(line)
    return normal, no_deps


def pip(*args: str) -> None:
    cmd = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", *args]
    print("+", " ".join(cmd[2:]), flush=True)
    subprocess.run(cmd, check=True)


def main() -> None:
    normal, no_deps = read_requirements()
    pip("-q", *normal)
    pip("-q", "--no-deps", *no_deps)
    pip("-q", "--no-deps", "--no-build-isolation", "-e", str(ROOT))


if __name__ == "__main__":
    main()
