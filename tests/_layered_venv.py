"""Fresh virtual environments for the launch tests (Binder's postBuild, a Colab start), made in seconds.

A test of "what happens in a fresh environment" must not see the course's .venv, yet reinstalling
torch, transformers and Jupyter (several GB) in every test run would take minutes. So the new
environment is a real, empty `python -m venv`, and behind it sits a read-only *layer*: a folder of
links to chosen packages of the course's environment, put on the path by a `.pth` line. Python and
pip see those packages as installed (pip says "already satisfied" and installs the rest into the new
environment), while anything left out of the layer - the helper package, gguf, the model packages,
ipywidgets 8 - is really missing until the code under test installs it. `.pth` files inside the layer
are not processed, so the course's editable `slmcourse` is never visible.
"""
from __future__ import annotations

import importlib.metadata as md
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COURSE_SITE = Path(sysconfig.get_paths()["purelib"])  # the course environment's site-packages


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _top_level_entries(distribution: str) -> set[str]:
    """Names directly in site-packages that belong to an installed distribution (from its RECORD)."""
    dist = md.distribution(distribution)
    entries = {Path(str(f)).parts[0] for f in (dist.files or [])}
    return {e for e in entries if e != ".." and (COURSE_SITE / e).exists()}


def make_layer(path: Path, exclude: tuple[str, ...]) -> Path:
    """A folder of links to every entry of the course's site-packages except those of `exclude`."""
    hidden = set()
    for name in exclude:
        try:
            hidden |= _top_level_entries(name)
        except md.PackageNotFoundError:
            pass
    path.mkdir(parents=True)
    for entry in COURSE_SITE.iterdir():
        if entry.name in hidden or entry.suffix == ".pth" or entry.name.startswith("__editable__"):
            continue
        (path / entry.name).symlink_to(entry)
    return path


def make_venv(path: Path, exclude: tuple[str, ...] = ()) -> Path:
    """A new venv at `path` (no pip of its own: the layer's pip installs into it); returns its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    python = path / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    layer = make_layer(path / "course-layer", exclude)
    (site / "_course_layer.pth").write_text(f"{layer}\n")
    return python


def venv_env(venv: Path, **extra: str) -> dict[str, str]:
    """Environment variables of a process running in `venv` (nothing of the caller's Python leaks in)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "JUPYTER", "PIP_REQUIRE"))}
    env.update(VIRTUAL_ENV=str(venv), PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
               PYTHONNOUSERSITE="1", HF_HUB_OFFLINE="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    env.update(extra)
    return env


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:  # another file system
        shutil.copy2(src, dst)


def linked_model_cache(target: Path) -> Path:
    """A private copy of the prepared model cache, made of hard links (instant, and safe: the course never
    writes a cached file in place - a conversion writes a new folder and renames it). Only converted
    models are linked; whether they are intact is for the code under test to check (it verifies every
    SHA-256 and converts again what is not)."""
    from slmcourse import bundled, catalogue

    target.mkdir(parents=True, exist_ok=True)
    for key in catalogue.names(bundled=True):
        card = catalogue.get(key)
        source = bundled.model_dir(card)
        if card.package["format"] != "safetensors" and (source / bundled.MANIFEST).is_file():
            shutil.copytree(source, target / source.name, copy_function=_link_or_copy)
    return target
