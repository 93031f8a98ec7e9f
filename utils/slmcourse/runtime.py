"""A real on-device runtime: ONNX Runtime GenAI running SmolLM2 in int4 with its KV cache.

`onnxruntime-genai` (PyPI) ships a model builder that reads a Hugging Face folder (the course's
converted safetensors cache, offline) and writes an ONNX graph with int4 block-quantized weights
(MatMulNBits, blocks of 32), a KV cache managed by the runtime, and its own tokenizer files. The build
runs once (about 10 s of CPU time, ~1.8 GB peak, measured) and is cached in ~/.cache/slmcourse.

`build(precision)` makes (or finds) the folder; `Runtime` loads it and decodes greedily from token
ids, so its output can be compared token for token with PyTorch's.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .errors import CourseError

PRECISIONS = ("int4", "fp32")


def available() -> bool:
    """True when onnxruntime-genai (and its builder's onnx_ir) can be imported."""
    try:
        import onnx_ir  # noqa: F401
        import onnxruntime_genai  # noqa: F401
    except ImportError:
        return False
    return True


def folder(precision: str = "int4") -> Path:
    """Where the built model lives: ~/.cache/slmcourse/onnx-genai-smollm2-135m-<precision>."""
    from .bundled import cache_dir

    if precision not in PRECISIONS:
        raise CourseError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    return cache_dir() / f"onnx-genai-smollm2-135m-{precision}"


def build(precision: str = "int4", force: bool = False) -> Path:
    """Build SmolLM2 for ONNX Runtime GenAI from the course's safetensors cache (once; cached)."""
    from .bundled import prepare

    out = folder(precision)
    if (out / "genai_config.json").is_file() and (out / "model.onnx").is_file() and not force:
        return out
    if not available():
        raise CourseError("onnxruntime-genai is not installed: pip install -r requirements.txt (it pins it)")
    source = prepare("smollm2-135m", progress=False)
    work = out.with_name(out.name + ".building")
    shutil.rmtree(work, ignore_errors=True)
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    cmd = [sys.executable, "-m", "onnxruntime_genai.models.builder", "-i", str(source), "-o", str(work),
           "-p", precision, "-e", "cpu", "-c", str(work.with_name(work.name + ".tmp"))]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    shutil.rmtree(work.with_name(work.name + ".tmp"), ignore_errors=True)
    if done.returncode != 0:
        raise CourseError(f"the ONNX Runtime GenAI builder failed:\n{done.stderr[-2000:]}")
    shutil.rmtree(out, ignore_errors=True)
    work.rename(out)
    return out


@dataclass
class RuntimeResult:
    new_ids: list[int]
    seconds: float                 # whole call: prompt + decode
    first_token_seconds: float     # prompt processing + first token
    @property
    def decode_tokens_per_second(self) -> float:
        n = len(self.new_ids) - 1
        rest = self.seconds - self.first_token_seconds
        return n / rest if n > 0 and rest > 0 else 0.0


class Runtime:
    """SmolLM2 in ONNX Runtime GenAI: greedy decoding from token ids, with the runtime's KV cache."""

    def __init__(self, path: str | Path | None = None):
        import onnxruntime_genai as og

        path = Path(path) if path is not None else build()
        if not (path / "genai_config.json").is_file():
            raise CourseError(f"{path} holds no ONNX Runtime GenAI model (no genai_config.json): build() it first")
        self.og, self.model, self.path = og, og.Model(str(path)), path
        self.bytes = sum(f.stat().st_size for f in path.glob("model.onnx*"))

    def generate(self, input_ids, max_new_tokens: int = 32, eos_token_id: int | None = None) -> RuntimeResult:
        ids = list(input_ids[0].tolist() if hasattr(input_ids, "tolist") and getattr(input_ids, "ndim", 1) == 2
                   else (input_ids.tolist() if hasattr(input_ids, "tolist") else input_ids))
        if not ids or max_new_tokens < 1:
            raise CourseError("give a non-empty prompt and max_new_tokens >= 1")
        params = self.og.GeneratorParams(self.model)
        params.set_search_options(do_sample=False, max_length=len(ids) + max_new_tokens)
        generator = self.og.Generator(self.model, params)
        start = time.perf_counter()
        generator.append_tokens(ids)
        new, first = [], 0.0
        while not generator.is_done() and len(new) < max_new_tokens:
            generator.generate_next_token()
            token = int(generator.get_next_tokens()[0])
            if not new:
                first = time.perf_counter() - start
            if eos_token_id is not None and token == eos_token_id:
                break
            new.append(token)
        return RuntimeResult(new, time.perf_counter() - start, first)

from .checks import guard_public as _guard_public  # noqa: E402 - issue 20: typed arguments checked on entry

_guard_public(globals())
