"""Looking inside the bundled GGUF files (lesson 9): tensor types, bits per weight, Q4_1 blocks.

GGUF (the llama.cpp file format) stores each tensor in one of many "ggml types": F32, F16, or a
block-quantized type such as Q4_1 (blocks of 32 weights: a float16 scale, a float16 minimum and 32
four-bit codes) or the "k-quants" Q4_K / Q6_K (super-blocks of 256 weights with sub-block scales).
The `gguf` package (from the llama.cpp project) reads the files; this module turns what it reads
into tables and decodes one Q4_1 block by hand, so it can be compared with gguf's own de-quantizer.

GGUF lists a tensor's dimensions fastest-varying first (``ne[0]`` is the row length); the tables here
give shapes in PyTorch order (rows, row length), as the model's ``nn.Linear`` weights have them.
"""
from __future__ import annotations

from collections import Counter, OrderedDict
from pathlib import Path

import numpy as np

from .errors import CourseError

try:  # gguf is a course dependency; say so clearly where it is missing (e.g. a bare Colab)
    import gguf
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, GGUFReader
except ImportError:  # pragma: no cover - exercised only without the package
    gguf = None

Q4_1_BLOCK = 32          # weights per Q4_1 block
Q4_1_BYTES = 20          # 2 (d, float16) + 2 (m, float16) + 16 (32 four-bit codes)

# What the bytes of one block hold, for the types in the bundled files (field, bytes, meaning).
BLOCK_LAYOUTS = {
    "F32": [("value", 4, "one float32 weight")],
    "F16": [("value", 2, "one float16 weight")],
    "Q8_0": [("d", 2, "float16 scale"), ("qs", 32, "32 int8 codes; weight = d * q")],
    "Q4_0": [("d", 2, "float16 scale"), ("qs", 16, "32 four-bit codes, two per byte; weight = d * (q - 8)")],
    "Q4_1": [("d", 2, "float16 scale (step between two codes)"), ("m", 2, "float16 minimum (value of code 0)"),
             ("qs", 16, "32 four-bit codes, two per byte: byte j holds weight j (low 4 bits) and weight j+16 "
                        "(high 4 bits); weight = d * q + m")],
    "Q5_0": [("d", 2, "float16 scale"), ("qh", 4, "the fifth (high) bit of each of the 32 codes"),
             ("qs", 16, "the low 4 bits of the 32 codes; weight = d * (q - 16)")],
    "Q4_K": [("d", 2, "float16 super-scale for the sub-block scales"),
             ("dmin", 2, "float16 super-scale for the sub-block minimums"),
             ("scales", 12, "8 sub-blocks of 32 weights: a 6-bit scale and a 6-bit minimum each"),
             ("qs", 128, "256 four-bit codes; weight = d * scale_s * q - dmin * min_s")],
    "Q6_K": [("ql", 128, "low 4 bits of 256 six-bit codes"), ("qh", 64, "high 2 bits of the codes"),
             ("scales", 16, "16 sub-blocks of 16 weights: an int8 scale each"),
             ("d", 2, "float16 super-scale; weight = d * scale_s * (q - 32)")],
}


def _need_gguf() -> None:
    if gguf is None:
        raise CourseError("the `gguf` package is needed to read GGUF files: pip install gguf")


def bundled_gguf(name: str) -> Path:
    """Path of a bundled model's GGUF file ("smollm2-135m" or "gemma-3-270m"), SHA-256 verified."""
    from .bundled import source_file
    from .catalogue import get

    card = get(name)
    if not card.bundled or not str(card.package.get("format", "")).startswith("gguf"):
        raise CourseError(f"{card.name} does not ship as a GGUF file; GGUF models: smollm2-135m, gemma-3-270m")
    return source_file(card)


def open_gguf(path_or_reader) -> "GGUFReader":
    """A GGUFReader for a path (or the reader itself, passed through)."""
    _need_gguf()
    if isinstance(path_or_reader, GGUFReader):
        return path_or_reader
    path = _path("path_or_reader", path_or_reader)
    if not path.is_file():
        raise CourseError(f"no such file: {path}")
    try:
        return GGUFReader(path)
    except (ValueError, OSError) as err:
        raise CourseError(f"{path.name} is not a readable GGUF file: {err}") from None


def _path(name: str, value) -> Path:
    """A file path given as a string or Path (issue 20: not a number, None or a list)."""
    import os

    if isinstance(value, bool) or not isinstance(value, (str, os.PathLike)) or not str(value).strip():
        raise CourseError(f"{name} must be the path of a .gguf file (a string or Path) or a GGUFReader, "
                          f"got {value!r} ({type(value).__name__})")
    return Path(value)


def _bytes(name: str, value) -> np.ndarray:
    """Raw block bytes: an array or list of whole numbers 0..255 (issue 20: not a string, None or a dict)."""
    if isinstance(value, (str, bytes, dict, type(None), bool, int, float)):
        raise CourseError(f"{name} must be an array of bytes (uint8 values, e.g. from raw_block), "
                          f"got {value!r} ({type(value).__name__})")
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError) as err:
        raise CourseError(f"{name} must be an array of bytes, got {type(value).__name__}: {err}") from None
    if arr.size == 0 or arr.dtype.kind not in "iu" or arr.min() < 0 or arr.max() > 255:
        raise CourseError(f"{name} must be a non-empty array of whole numbers 0..255 (bytes), got "
                          f"{arr.size} values of type {arr.dtype}")
    return arr.astype(np.uint8)


def _floats(name: str, value, ndim: int | None = None) -> np.ndarray:
    """Values to quantize: a non-empty array (or list, or tensor) of finite numbers."""
    if isinstance(value, (str, bytes, dict, type(None), bool)):
        raise CourseError(f"{name} must be an array of numbers, got {value!r} ({type(value).__name__})")
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a number too big for float32 becomes inf: refused below
            arr = np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError, OverflowError) as err:
        raise CourseError(f"{name} must be an array of numbers, got {type(value).__name__}: {err}") from None
    if arr.size == 0 or not np.isfinite(arr).all():
        raise CourseError(f"{name} must be a non-empty array of finite numbers, got {arr.size} values"
                          f"{'' if arr.size == 0 else ' with NaN or inf'}")
    if ndim is not None and arr.ndim != ndim:
        raise CourseError(f"{name} must have {ndim} dimensions (rows, row length), got shape {arr.shape}")
    return arr


def _qtype(qtype) -> "GGMLQuantizationType":
    """A ggml type from its name ('Q4_1', case-insensitive) or number; anything else a CourseError (issue 20)."""
    _need_gguf()
    from .checks import closest

    names = [t.name for t in GGMLQuantizationType]
    if isinstance(qtype, GGMLQuantizationType):
        return qtype
    if isinstance(qtype, str):
        key = qtype.strip().upper()
        if key in names:
            return GGMLQuantizationType[key]
        near = closest(qtype, names)
        hint = f" (did you mean {' or '.join(repr(n) for n in near)}?)" if near else ""
        raise CourseError(f"unknown ggml type {qtype!r}{hint}; known: {', '.join(names)}")
    if isinstance(qtype, bool) or not isinstance(qtype, int):
        raise CourseError(f"qtype must be a ggml type name such as 'Q4_1' or its number, got {qtype!r}")
    try:
        return GGMLQuantizationType(qtype)
    except ValueError:
        raise CourseError(f"{qtype} is not a ggml type number; known: "
                          f"{', '.join(f'{t.value}={t.name}' for t in GGMLQuantizationType)}") from None


def type_name(qtype) -> str:
    return _qtype(qtype).name


def bits_per_weight(qtype) -> float:
    """Bits a ggml type spends per weight, scales and minimums included (e.g. Q4_1 -> 5.0)."""
    block, nbytes = GGML_QUANT_SIZES[_qtype(qtype)]
    return 8 * nbytes / block


def block_size(qtype) -> tuple[int, int]:
    """(weights per block, bytes per block) of a ggml type."""
    return GGML_QUANT_SIZES[_qtype(qtype)]


def metadata(path_or_reader, keys=None) -> dict:
    """Readable metadata fields (strings and numbers; long arrays such as the vocabulary skipped)."""
    reader = open_gguf(path_or_reader)
    if keys is not None:
        from .checks import string_list

        keys = string_list("keys", keys)
    out = OrderedDict()
    for key, fld in reader.fields.items():
        if keys is not None and key not in keys:
            continue
        if len(fld.data) != 1:
            continue
        try:
            value = fld.contents()
        except (ValueError, TypeError, IndexError):  # pragma: no cover - odd field types
            continue
        out[key] = value
    return out


# GGUF metadata value types -> bytes of one value (8 = string and 9 = array are walked instead)
_VALUE_BYTES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}


def header_tensors(path) -> list[tuple[str, int, tuple[int, ...]]]:
    """(name, ggml type number, dimensions as GGUF lists them) of every tensor, from the file's header only.

    Skips the key-value metadata without decoding it: much faster than ``GGUFReader`` on a file with a
    large vocabulary (Gemma's 262,144 tokens), which builds one array per token. No tensor data is read.
    """
    import mmap
    import struct

    path = _path("path", path)
    if not path.is_file():
        raise CourseError(f"no such file: {path}")
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        if data[:4] != b"GGUF":
            raise CourseError(f"{path.name} is not a GGUF file (it does not start with 'GGUF')")
        version, n_tensors, n_kv = struct.unpack_from("<IQQ", data, 4)
        if version < 2:
            raise CourseError(f"{path.name} is GGUF version {version}; only versions 2 and later are read")
        offs = 24

        def skip_value(vtype: int, offs: int) -> int:
            if vtype == 8:                                   # string: uint64 length + bytes
                return offs + 8 + struct.unpack_from("<Q", data, offs)[0]
            if vtype == 9:                                   # array: item type, count, items
                itype, count = struct.unpack_from("<IQ", data, offs)
                offs += 12
                if itype in _VALUE_BYTES:
                    return offs + count * _VALUE_BYTES[itype]
                for _ in range(count):
                    offs = skip_value(itype, offs)
                return offs
            if vtype not in _VALUE_BYTES:
                raise CourseError(f"{path.name}: unknown GGUF value type {vtype}")
            return offs + _VALUE_BYTES[vtype]

        for _ in range(n_kv):
            offs += 8 + struct.unpack_from("<Q", data, offs)[0]          # the key
            vtype = struct.unpack_from("<I", data, offs)[0]
            offs = skip_value(vtype, offs + 4)
        tensors = []
        for _ in range(n_tensors):
            length = struct.unpack_from("<Q", data, offs)[0]
            name = data[offs + 8:offs + 8 + length].decode("utf-8")
            offs += 8 + length
            n_dims = struct.unpack_from("<I", data, offs)[0]
            dims = struct.unpack_from(f"<{n_dims}Q", data, offs + 4)
            offs += 4 + 8 * n_dims
            qtype = struct.unpack_from("<I", data, offs)[0]
            offs += 12                                                   # type + data offset
            tensors.append((name, qtype, tuple(int(d) for d in dims)))
    return tensors


def tensor_table(path_or_reader) -> list[dict]:
    """One row per tensor: name, ggml type, shape (PyTorch order), weights, bytes, bits per weight.

    Given a path, only the file's header is read (`header_tensors`); given a ``GGUFReader``, its tensors."""
    _need_gguf()
    if isinstance(path_or_reader, GGUFReader):
        infos = [(t.name, int(t.tensor_type), tuple(int(d) for d in t.shape.tolist())) for t in path_or_reader.tensors]
    else:
        infos = header_tensors(path_or_reader)
    rows = []
    for name, qtype, dims in infos:
        elements = int(np.prod(dims, dtype=np.int64))
        per_block, block_bytes = GGML_QUANT_SIZES[GGMLQuantizationType(qtype)]
        nbytes = elements * block_bytes // per_block
        rows.append({"name": name, "type": type_name(qtype), "shape": tuple(reversed(dims)),
                     "weights": elements, "bytes": nbytes, "bits_per_weight": 8 * nbytes / elements})
    return rows


def role(tensor_name: str) -> str:
    """The job of a tensor, without its layer number: 'blk.3.ffn_down.weight' -> 'ffn_down'."""
    parts = tensor_name.split(".")
    if parts[0] == "blk" and len(parts) >= 3:
        parts = parts[2:]
    if parts[-1] in ("weight", "bias"):
        parts = parts[:-1]
    return ".".join(parts)


def type_summary(path_or_reader) -> list[dict]:
    """Per ggml type: tensors, weights, bytes, bits per weight, share of the file's weight bytes."""
    rows = tensor_table(path_or_reader)
    total = sum(r["bytes"] for r in rows)
    summary = OrderedDict()
    for r in rows:
        s = summary.setdefault(r["type"], {"type": r["type"], "tensors": 0, "weights": 0, "bytes": 0})
        s["tensors"] += 1
        s["weights"] += r["weights"]
        s["bytes"] += r["bytes"]
    out = []
    for s in sorted(summary.values(), key=lambda s: -s["bytes"]):
        s["bits_per_weight"] = 8 * s["bytes"] / s["weights"]
        s["share_of_bytes"] = s["bytes"] / total
        out.append(s)
    return out


def types_by_role(path_or_reader) -> "OrderedDict[str, Counter]":
    """For each role (attn_q, ffn_down, ...): how many tensors of each ggml type."""
    table = OrderedDict()
    for r in tensor_table(path_or_reader):
        table.setdefault(role(r["name"]), Counter())[r["type"]] += 1
    return table


def file_bits_per_weight(path_or_reader) -> float:
    """Average bits per weight over every tensor in the file."""
    rows = tensor_table(path_or_reader)
    return 8 * sum(r["bytes"] for r in rows) / sum(r["weights"] for r in rows)


def _tensor(reader: "GGUFReader", name: str):
    for t in reader.tensors:
        if t.name == name:
            return t
    raise CourseError(f"no tensor named {name!r} in this file (e.g. {reader.tensors[0].name!r})")


def raw_block(path_or_reader, tensor_name: str, block: int = 0) -> np.ndarray:
    """The raw bytes (uint8) of block number `block` of a block-quantized tensor."""
    reader = open_gguf(path_or_reader)
    t = _tensor(reader, tensor_name)
    per_block, nbytes = block_size(t.tensor_type)
    n_blocks = int(t.n_elements) // per_block
    if isinstance(block, bool) or not isinstance(block, (int, np.integer)) or not 0 <= block < n_blocks:
        raise CourseError(f"{tensor_name} has blocks 0 to {n_blocks - 1}; got {block!r}")
    flat = np.asarray(t.data).reshape(-1).view(np.uint8)
    return flat[block * nbytes:(block + 1) * nbytes].copy()


def block_position(path_or_reader, tensor_name: str, block: int = 0) -> tuple[int, int]:
    """(row, first column) in PyTorch order of the first weight of a block."""
    reader = open_gguf(path_or_reader)
    t = _tensor(reader, tensor_name)
    per_block, _ = block_size(t.tensor_type)
    n_blocks = int(t.n_elements) // per_block
    if isinstance(block, bool) or not isinstance(block, (int, np.integer)) or not 0 <= block < n_blocks:
        raise CourseError(f"{tensor_name} has blocks 0 to {n_blocks - 1}; got {block!r}")
    row_length = int(t.shape[0])
    start = block * per_block
    return start // row_length, start % row_length


def _check_q4_1_bytes(raw) -> np.ndarray:
    raw = _bytes("raw", raw).reshape(-1)
    if raw.size != Q4_1_BYTES:
        raise CourseError(f"a Q4_1 block is {Q4_1_BYTES} bytes (2 + 2 + 16), got {raw.size}")
    return raw


def decode_q4_1_block(raw) -> dict:
    """Split a Q4_1 block into its fields: scale d, minimum m (float16) and the 32 codes (0..15)."""
    raw = _check_q4_1_bytes(raw)
    d = raw[0:2].view("<f2")[0]
    m = raw[2:4].view("<f2")[0]
    qs = raw[4:20]
    codes = np.concatenate([qs & 0x0F, qs >> 4]).astype(np.uint8)  # weights 0-15, then 16-31
    return {"d": np.float32(d), "m": np.float32(m), "codes": codes}


def dequantize_q4_1_block(raw) -> np.ndarray:
    """De-quantize one Q4_1 block by hand: weight_i = d * code_i + m (float32, 32 values)."""
    fields = decode_q4_1_block(raw)
    return fields["d"] * fields["codes"].astype(np.float32) + fields["m"]


def quantize_q4_1_block(values) -> np.ndarray:
    """Quantize 32 float values into one Q4_1 block (20 bytes), as llama.cpp's reference code does:
    m = min, d = (max - min) / 15, code = round((x - m) / d), d and m stored as float16."""
    x = _floats("values", values).reshape(-1)
    if x.size != Q4_1_BLOCK:
        raise CourseError(f"a Q4_1 block holds {Q4_1_BLOCK} values, got {x.size}")
    lo, hi = x.min(), x.max()
    d = (hi - lo) / np.float32(15)
    inv = np.float32(0) if d == 0 else np.float32(1) / d
    codes = np.clip(np.trunc((x - lo) * inv + np.float32(0.5)), 0, 15).astype(np.uint8)
    packed = codes[:16] | (codes[16:] << np.uint8(4))
    header = np.array([d, lo], dtype=np.float32).astype("<f2").view(np.uint8)
    return np.concatenate([header, packed]).astype(np.uint8)


def library_dequantize_block(raw, qtype="Q4_1") -> np.ndarray:
    """gguf's own de-quantizer applied to one raw block."""
    _need_gguf()
    qtype = _qtype(qtype)
    raw = _bytes("raw", raw).reshape(-1)
    if raw.size != block_size(qtype)[1]:
        raise CourseError(f"a {qtype.name} block is {block_size(qtype)[1]} bytes, got {raw.size}")
    return gguf.quants.dequantize(raw.reshape(1, -1), qtype).reshape(-1)


def library_quantize_block(values, qtype="Q4_1") -> np.ndarray:
    """gguf's own quantizer applied to one block of values."""
    _need_gguf()
    qtype = _qtype(qtype)
    values = _floats("values", values).reshape(-1)
    if values.size != block_size(qtype)[0]:
        raise CourseError(f"a {qtype.name} block holds {block_size(qtype)[0]} values, got {values.size}")
    return gguf.quants.quantize(values.reshape(1, -1), qtype).reshape(-1)


def dequantize_tensor(path_or_reader, tensor_name: str) -> np.ndarray:
    """A whole tensor de-quantized by gguf, in PyTorch order (rows, row length), float32."""
    reader = open_gguf(path_or_reader)
    t = _tensor(reader, tensor_name)
    values = gguf.quants.dequantize(t.data, t.tensor_type)
    return np.asarray(values, dtype=np.float32).reshape(tuple(int(d) for d in reversed(t.shape.tolist())))


def tensor_bytes(path_or_reader, tensor_name: str) -> np.ndarray:
    """The raw bytes of a whole tensor as stored in the file (uint8, one row per tensor row)."""
    reader = open_gguf(path_or_reader)
    return np.asarray(_tensor(reader, tensor_name).data).view(np.uint8).copy()


def quantize_tensor(values, qtype="Q4_1") -> np.ndarray:
    """gguf's own quantizer on a whole (rows, row length) float array: the bytes a file would hold."""
    _need_gguf()
    qtype = _qtype(qtype)
    values = _floats("values", values, ndim=2)
    if values.ndim != 2 or values.shape[1] % block_size(qtype)[0]:
        raise CourseError(f"{qtype.name} needs rows whose length is a multiple of {block_size(qtype)[0]}")
    return gguf.quants.quantize(values, qtype)

from .checks import guard_public as _guard_public  # noqa: E402 - issue 20: typed arguments checked on entry

_guard_public(globals())
