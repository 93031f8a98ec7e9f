"""A real on-device runtime: ONNX Runtime GenAI running SmolLM2 in int4 with its KV cache.

`onnxruntime-genai` (PyPI) ships a model builder that reads a Hugging Face folder (the course's
converted safetensors cache, offline) and writes an ONNX graph with int4 block-quantized weights
(MatMulNBits, blocks of 32), a KV cache managed by the runtime, and its own tokenizer files. The build
runs once (about 10 s of CPU time, ~1.8 GB peak, measured) and is cached in ~/.cache/slmcourse.

`build(precision)` makes (or finds) the folder; `Runtime` loads it and decodes greedily from token
ids, so its output can be compared token for token with PyTorch's (`threads=` and `spinning=` set ONNX
Runtime's intra-op thread pool).

`bytes_per_token(folder)` counts what one decode step really reads: every weight a matrix product uses, at
its stored precision (int4 or int8 codes plus their float scales), but only ONE row of a table that is only
looked up (an embedding that is not shared with the LM head, the rotary cos/sin caches). The file size
counts those tables whole and overstates the bytes read: by 113 MB in the int8 build, whose float32
embedding is separate from its int8 LM head. `kv_bytes_per_token(folder, context)` adds the KV cache.
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

PRECISIONS = ("int4", "int8", "fp32")
# Lookups that read one row of their table per token: (operator, index of the table among its inputs).
ROW_LOOKUPS = {("Gather", 0), ("GatherBlockQuantized", 0), ("GatherBlockQuantized", 2),
               ("GatherBlockQuantized", 3), ("GroupQueryAttention", 7), ("GroupQueryAttention", 8)}


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


def initializer_bytes(tensor) -> int:
    """Bytes one ONNX initializer occupies as stored (external data, raw bytes, or typed fields)."""
    import numpy as np
    import onnx

    if not isinstance(tensor, onnx.TensorProto):
        raise CourseError(f"initializer_bytes needs an ONNX initializer (onnx.TensorProto), got {type(tensor).__name__}")
    for entry in tensor.external_data:
        if entry.key == "length":
            return int(entry.value)
    if tensor.raw_data:
        return len(tensor.raw_data)
    return int(np.prod(tensor.dims, dtype=np.int64)) * np.dtype(onnx.helper.tensor_dtype_to_np_dtype(tensor.data_type)).itemsize


def bytes_per_token(path: str | Path) -> int:
    """Weight bytes one decode step reads from an ONNX Runtime GenAI model folder (KV cache not included).

    A weight any operator multiplies by (MatMulNBits codes and scales, MatMul, norms) is read whole, at its
    stored precision. A table that is only looked up (see ROW_LOOKUPS) costs one row per lookup; a table
    shared by a lookup and a matrix product (tied embeddings) is read whole once, by the product.
    """
    import onnx

    model_file = Path(path) / "model.onnx"
    if not model_file.is_file():
        raise CourseError(f"{path} holds no model.onnx: build() it first")
    graph = onnx.load(str(model_file), load_external_data=False).graph
    uses: dict[str, list[tuple[str, int]]] = {}
    for node in graph.node:
        for index, name in enumerate(node.input):
            uses.setdefault(name, []).append((node.op_type, index))
    total = 0
    for tensor in graph.initializer:
        size, used = initializer_bytes(tensor), uses.get(tensor.name, [])
        if used and all(use in ROW_LOOKUPS for use in used) and tensor.dims and tensor.dims[0] > 0:
            total += size // tensor.dims[0] * len(used)          # one row per lookup
        elif used:
            total += size
    return total


def kv_bytes_per_token(path: str | Path, context: int) -> int:
    """KV-cache bytes one decode step reads at `context` tokens: 2 x layers x KV heads x head size x bytes x context."""
    import json

    import onnx

    if isinstance(context, bool) or not isinstance(context, int) or context < 0:
        raise CourseError(f"context must be a whole number of tokens >= 0, got {context!r}")
    path = Path(path)
    if not (path / "genai_config.json").is_file() or not (path / "model.onnx").is_file():
        raise CourseError(f"{path} holds no ONNX Runtime GenAI model (genai_config.json and model.onnx): build() it first")
    config = json.loads((path / "genai_config.json").read_text())["model"]["decoder"]
    graph = onnx.load(str(path / "model.onnx"), load_external_data=False).graph
    elem = next(i.type.tensor_type.elem_type for i in graph.input if i.name.startswith("past_key_values"))
    itemsize = onnx.helper.tensor_dtype_to_np_dtype(elem).itemsize
    return 2 * config["num_hidden_layers"] * config["num_key_value_heads"] * config["head_size"] * itemsize * context


class Runtime:
    """SmolLM2 in ONNX Runtime GenAI: greedy decoding from token ids, with the runtime's KV cache.

    `threads`: ONNX Runtime's intra-op threads (None: its default, one per core); `spinning`: whether idle
    pool threads spin-wait for the next operator (None: the default, on) — spinning saves a wake-up per
    operator, but burns a core another program may want.
    """

    def __init__(self, path: str | Path | None = None, threads: int | None = None, spinning: bool | None = None):
        import json

        import onnxruntime_genai as og

        path = Path(path) if path is not None else build()
        if not (path / "genai_config.json").is_file():
            raise CourseError(f"{path} holds no ONNX Runtime GenAI model (no genai_config.json): build() it first")
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
            raise CourseError(f"threads must be a whole number >= 1 (or None for the default), got {threads!r}")
        options: dict = {}
        if threads is not None:
            options["intra_op_num_threads"] = threads
        if spinning is not None:
            options["session.intra_op.allow_spinning"] = "1" if spinning else "0"     # a session config entry
        config = og.Config(str(path))
        if options:
            config.overlay(json.dumps({"model": {"decoder": {"session_options": options}}}))
        self.og, self.model, self.path = og, og.Model(config), path
        self.bytes = sum(f.stat().st_size for f in path.glob("model.onnx*"))       # on disk
        self.bytes_per_token = bytes_per_token(path)                               # read per decode step

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
