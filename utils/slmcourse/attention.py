"""Attention maths from scratch: masks, grouped-query attention, ALiBi, RoPE, KV-cache sizes.

Pure functions on torch tensors shaped (batch, heads, seq, head_dim) unless stated otherwise.
Every function here is checked in tests/test_attention.py against the reference it re-implements
(`torch.nn.functional.scaled_dot_product_attention`, and transformers' Llama, Mistral, Gemma, MPT
and BLOOM code) to 1e-5 in float32.

Conventions (the ones transformers uses, so the lessons can compare numbers directly):
- a boolean mask says True where a query MAY attend to a key; an additive float bias is separate;
- `causal_mask`/`sliding_window_mask` are (query, key) matrices; with window `w`, query `i` sees the
  keys `j` with `i - w < j <= i`: itself and the `w - 1` before it (Mistral / Gemma);
- `repeat_kv` copies KV head `g` to query heads `g * n_rep ... g * n_rep + n_rep - 1` (Llama);
- `rope` uses the half-split layout of Llama (dimension `d` pairs with `d + head_dim / 2`);
- `alibi_bias[h, i, j] = -slope_h * (i - j)`: the linear penalty of Press et al. (2022), meant to
  be used together with a causal mask.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch

from .errors import CourseError


# --------------------------------------------------------------------------------------------
# small validation helpers
# --------------------------------------------------------------------------------------------

def _whole(what: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise CourseError(f"{what} must be a whole number >= {minimum}, got {value!r}")
    return value


def _tensor(what: str, value) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise CourseError(f"{what} must be a torch tensor, got {type(value).__name__}")
    return value


def _broadcastable(what: str, shape: Sequence[int], target: Sequence[int]) -> None:
    try:
        torch.broadcast_shapes(tuple(shape), tuple(target))
    except RuntimeError:
        raise CourseError(f"{what} of shape {tuple(shape)} cannot be broadcast to the attention scores' "
                          f"shape {tuple(target)} (batch, heads, queries, keys)") from None


# --------------------------------------------------------------------------------------------
# the core formula
# --------------------------------------------------------------------------------------------

def attention_weights(q: torch.Tensor, k: torch.Tensor, mask: torch.Tensor | None = None,
                      bias: torch.Tensor | None = None, scale: float | None = None) -> torch.Tensor:
    """softmax(q k^T * scale + bias), with masked-out keys given weight 0: shape (..., queries, keys).

    A query whose every key is masked gets all-zero weights (as PyTorch's own SDPA does), not NaN.
    """
    q, k = _tensor("q", q), _tensor("k", k)
    if q.dim() < 2 or k.dim() != q.dim():
        raise CourseError(f"q and k need the same number of dimensions, (batch, heads, seq, head_dim); "
                          f"got q {tuple(q.shape)} and k {tuple(k.shape)}")
    if q.shape[-1] != k.shape[-1]:
        raise CourseError(f"q and k must have the same head_dim (last dimension): {q.shape[-1]} != {k.shape[-1]}")
    if q.shape[:-2] != k.shape[:-2]:
        raise CourseError(f"q {tuple(q.shape)} and k {tuple(k.shape)} differ in batch or heads; "
                          "for fewer key/value heads than query heads use grouped_query_attention")
    if scale is None:
        scale = 1.0 / math.sqrt(q.shape[-1])
    scores = torch.matmul(q, k.transpose(-2, -1)) * scale
    if bias is not None:
        bias = _tensor("bias", bias)
        if bias.dtype == torch.bool:
            raise CourseError("bias must hold numbers added to the scores; a boolean tensor belongs in mask=")
        _broadcastable("bias", bias.shape, scores.shape)
        scores = scores + bias.to(scores.dtype)
    if mask is not None:
        mask = _tensor("mask", mask)
        if mask.dtype != torch.bool:
            raise CourseError(f"mask must be boolean (True = may attend), got dtype {mask.dtype}; "
                              "pass additive float values as bias= instead")
        _broadcastable("mask", mask.shape, scores.shape)
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    if mask is not None:
        weights = torch.nan_to_num(weights, nan=0.0)  # rows with no visible key at all
    return weights


def scaled_dot_product_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                                 mask: torch.Tensor | None = None, bias: torch.Tensor | None = None,
                                 scale: float | None = None) -> torch.Tensor:
    """The textbook formula softmax(q k^T / sqrt(head_dim) + bias) v (Vaswani et al. 2017).

    q: (batch, heads, queries, head_dim); k, v: (batch, heads, keys, head_dim).
    mask: boolean, broadcastable to (batch, heads, queries, keys), True where a query may attend.
    bias: float, broadcastable to the same shape, added to the scores (ALiBi, relative positions).
    scale: defaults to 1 / sqrt(head_dim).
    """
    v = _tensor("v", v)
    weights = attention_weights(q, k, mask=mask, bias=bias, scale=scale)
    if v.dim() != k.dim() or v.shape[:-1] != k.shape[:-1]:
        raise CourseError(f"v must have one vector per key: k is {tuple(k.shape)}, v is {tuple(v.shape)}")
    return torch.matmul(weights.to(v.dtype), v)


# --------------------------------------------------------------------------------------------
# masks
# --------------------------------------------------------------------------------------------

def _positions(seq_len: int, kv_len: int | None, device) -> tuple[torch.Tensor, torch.Tensor]:
    _whole("seq_len", seq_len)
    kv_len = seq_len if kv_len is None else _whole("kv_len", kv_len)
    if kv_len < seq_len:
        raise CourseError(f"kv_len ({kv_len}) cannot be shorter than seq_len ({seq_len}): the queries are "
                          "the last seq_len of the kv_len positions")
    i = torch.arange(kv_len - seq_len, kv_len, device=device)[:, None]  # absolute query positions
    j = torch.arange(kv_len, device=device)[None, :]
    return i, j


def causal_mask(seq_len: int, kv_len: int | None = None, device=None) -> torch.Tensor:
    """Boolean (seq_len, kv_len) mask, True where query i may see key j, i.e. j <= i.

    With `kv_len` > `seq_len` the queries are the LAST `seq_len` positions (decoding with a cache).
    """
    i, j = _positions(seq_len, kv_len, device)
    return j <= i


def sliding_window_mask(seq_len: int, window: int, kv_len: int | None = None, device=None) -> torch.Tensor:
    """Boolean causal sliding-window mask: query i sees keys j with i - window < j <= i.

    That is itself and the `window - 1` positions before it, the convention of Mistral and Gemma
    (transformers' `sliding_window_causal_mask_function`). A window >= seq_len is plain causal.
    """
    _whole("window", window)
    i, j = _positions(seq_len, kv_len, device)
    return (j <= i) & (j > i - window)


def sliding_window_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, window: int,
                             block: int | None = None) -> torch.Tensor:
    """Causal sliding-window attention computed block by block, in time and memory linear in the length.

    Same result as `scaled_dot_product_attention(q, k, v, mask=sliding_window_mask(seq, window))`, but each
    block of `block` queries (default: `window`) only scores the keys it can see, so the full
    (seq x seq) score matrix is never built. q, k, v: (batch, heads, seq, head_dim), same length.
    """
    _whole("window", window)
    block = window if block is None else _whole("block", block)
    for what, t in (("q", q), ("k", k), ("v", v)):
        if _tensor(what, t).dim() != 4:
            raise CourseError(f"{what} must be (batch, heads, seq, head_dim), got shape {tuple(t.shape)}")
    if q.shape[2] != k.shape[2]:
        raise CourseError(f"q has {q.shape[2]} positions and k has {k.shape[2]}: this function needs the same length")
    seq = q.shape[2]
    outputs = []
    for start in range(0, seq, block):
        end = min(start + block, seq)
        lo = max(0, start - window + 1)  # the oldest key any query of this block can see
        mask = sliding_window_mask(end - start, window, kv_len=end - lo, device=q.device)
        outputs.append(scaled_dot_product_attention(q[:, :, start:end], k[:, :, lo:end], v[:, :, lo:end], mask=mask))
    return torch.cat(outputs, dim=2)


def attended_pairs(seq_len: int, window: int | None = None) -> int:
    """How many (query, key) scores a causal layer computes: seq(seq+1)/2, or about seq*window with a window."""
    _whole("seq_len", seq_len)
    if window is None or window >= seq_len:
        return seq_len * (seq_len + 1) // 2
    _whole("window", window)
    return window * (window + 1) // 2 + (seq_len - window) * window


def receptive_field(masks: Sequence[torch.Tensor]) -> torch.Tensor:
    """Which input positions can influence each output position after stacking layers with these masks.

    Boolean (seq, seq): entry [i, j] is True when information from token j can reach position i
    through the layers (each layer's mask applied in turn, the residual stream included).
    """
    if not masks:
        raise CourseError("give at least one layer mask")
    reach = None
    for m in masks:
        m = _tensor("mask", m)
        if m.dtype != torch.bool or m.dim() != 2 or m.shape[0] != m.shape[1]:
            raise CourseError(f"each mask must be a square boolean (seq, seq) tensor, got {tuple(m.shape)} {m.dtype}")
        if reach is None:
            reach = m.clone()
        else:
            if m.shape != reach.shape:
                raise CourseError("all layer masks must have the same size")
            reach = (m.to(torch.float32) @ reach.to(torch.float32)) > 0
    return reach


def receptive_field_size(layers: int, window: int) -> int:
    """Tokens one position can draw on after `layers` sliding-window layers: layers * (window - 1) + 1."""
    _whole("layers", layers)
    _whole("window", window)
    return layers * (window - 1) + 1


# --------------------------------------------------------------------------------------------
# multi-head, multi-query, grouped-query
# --------------------------------------------------------------------------------------------

def repeat_kv(x: torch.Tensor, n_rep: int) -> torch.Tensor:
    """(batch, kv_heads, seq, head_dim) -> (batch, kv_heads * n_rep, seq, head_dim).

    Each KV head is repeated `n_rep` times in a row, so query head h uses KV head h // n_rep.
    """
    x = _tensor("x", x)
    _whole("n_rep", n_rep)
    if x.dim() != 4:
        raise CourseError(f"repeat_kv expects (batch, kv_heads, seq, head_dim), got shape {tuple(x.shape)}")
    if n_rep == 1:
        return x
    b, g, s, d = x.shape
    return x[:, :, None, :, :].expand(b, g, n_rep, s, d).reshape(b, g * n_rep, s, d)


def grouped_query_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                            mask: torch.Tensor | None = None, bias: torch.Tensor | None = None,
                            scale: float | None = None) -> torch.Tensor:
    """Attention where H query heads share G key/value heads (Ainslie et al. 2023).

    q: (batch, H, queries, head_dim); k, v: (batch, G, keys, head_dim) with H % G == 0.
    G == H is multi-head attention, G == 1 multi-query attention (Shazeer 2019).
    Returns (batch, H, queries, head_dim).
    """
    for what, t in (("q", q), ("k", k), ("v", v)):
        if _tensor(what, t).dim() != 4:
            raise CourseError(f"{what} must be (batch, heads, seq, head_dim), got shape {tuple(t.shape)}")
    heads, kv_heads = q.shape[1], k.shape[1]
    if v.shape[1] != kv_heads:
        raise CourseError(f"k has {kv_heads} heads but v has {v.shape[1]}: they must match")
    if kv_heads == 0 or heads % kv_heads:
        raise CourseError(f"{heads} query heads cannot be shared evenly among {kv_heads} key/value heads "
                          "(the query heads must be a multiple of the KV heads)")
    if q.shape[0] != k.shape[0] or k.shape[0] != v.shape[0]:
        raise CourseError(f"batch sizes differ: q {q.shape[0]}, k {k.shape[0]}, v {v.shape[0]}")
    n_rep = heads // kv_heads
    return scaled_dot_product_attention(q, repeat_kv(k, n_rep), repeat_kv(v, n_rep), mask=mask, bias=bias,
                                        scale=scale)


def attention_layer(hidden: torch.Tensor, wq: torch.Tensor, wk: torch.Tensor, wv: torch.Tensor, wo: torch.Tensor,
                    heads: int, kv_heads: int, positions: torch.Tensor | None = None, rope_base: float | None = 10000.0,
                    mask: torch.Tensor | None = None, bias: torch.Tensor | None = None,
                    biases: tuple | None = None) -> torch.Tensor:
    """A whole attention block from its weight matrices (nn.Linear layout: out_features x in_features).

    hidden (batch, seq, hidden) -> project to H query and G KV heads -> RoPE (if `rope_base`) ->
    grouped-query attention (causal unless `mask` is given) -> output projection.
    `biases` = (bq, bk, bv, bo) for layers with projection biases (None entries allowed).
    """
    hidden = _tensor("hidden", hidden)
    if hidden.dim() != 3:
        raise CourseError(f"hidden must be (batch, seq, hidden_size), got {tuple(hidden.shape)}")
    _whole("heads", heads)
    _whole("kv_heads", kv_heads)
    b, s, _ = hidden.shape
    if wq.shape[0] % heads:
        raise CourseError(f"the query projection's {wq.shape[0]} outputs do not split into {heads} heads")
    head_dim = wq.shape[0] // heads
    if wk.shape[0] != kv_heads * head_dim or wv.shape[0] != kv_heads * head_dim:
        raise CourseError(f"key/value projections must have kv_heads x head_dim = {kv_heads * head_dim} outputs, "
                          f"got {wk.shape[0]} and {wv.shape[0]}")
    if biases is not None and (not isinstance(biases, (tuple, list)) or len(biases) != 4
                               or not all(b is None or isinstance(b, torch.Tensor) for b in biases)):
        raise CourseError(f"biases must be None or four bias tensors (bq, bk, bv, bo; None entries allowed), "
                          f"got {biases!r}"[:300])
    bq, bk, bv, bo = biases if biases is not None else (None, None, None, None)
    lin = torch.nn.functional.linear
    q = lin(hidden, wq, bq).view(b, s, heads, head_dim).transpose(1, 2)
    k = lin(hidden, wk, bk).view(b, s, kv_heads, head_dim).transpose(1, 2)
    v = lin(hidden, wv, bv).view(b, s, kv_heads, head_dim).transpose(1, 2)
    if rope_base is not None:
        if positions is None:
            positions = torch.arange(s, device=hidden.device)
        q, k = rope(q, positions, rope_base), rope(k, positions, rope_base)
    if mask is None:
        mask = causal_mask(s, device=hidden.device)
    out = grouped_query_attention(q, k, v, mask=mask, bias=bias)
    return lin(out.transpose(1, 2).reshape(b, s, heads * head_dim), wo, bo)


# --------------------------------------------------------------------------------------------
# rolling KV cache (Mistral)
# --------------------------------------------------------------------------------------------

class RollingKVCache:
    """A fixed-size KV cache for a sliding-window layer: it keeps only the last `window` tokens.

    Mistral stores position p in slot p % window of a ring buffer; `keys()`/`values()` return the
    slots in time order (oldest first), which is what attention needs. Memory stays constant however
    long the text grows.
    """

    def __init__(self, window: int):
        self.window = _whole("window", window)
        self._k: torch.Tensor | None = None
        self._v: torch.Tensor | None = None
        self.seen = 0  # tokens appended so far

    def append(self, k: torch.Tensor, v: torch.Tensor) -> None:
        """Add one or more tokens' keys and values, each (batch, kv_heads, new_tokens, head_dim)."""
        for what, t in (("k", k), ("v", v)):
            if _tensor(what, t).dim() != 4:
                raise CourseError(f"{what} must be (batch, kv_heads, new_tokens, head_dim), got {tuple(t.shape)}")
        if k.shape != v.shape:
            raise CourseError(f"k {tuple(k.shape)} and v {tuple(v.shape)} must have the same shape")
        if self._k is None:
            b, g, _, d = k.shape
            self._k = k.new_zeros(b, g, self.window, d)
            self._v = v.new_zeros(b, g, self.window, d)
        elif k.shape[:2] != self._k.shape[:2] or k.shape[-1] != self._k.shape[-1]:
            raise CourseError("new keys must have the same batch, heads and head_dim as the cached ones")
        for t in range(k.shape[2]):
            slot = self.seen % self.window
            self._k[:, :, slot] = k[:, :, t]
            self._v[:, :, slot] = v[:, :, t]
            self.seen += 1

    def __len__(self) -> int:
        return min(self.seen, self.window)

    def _ordered(self, buf: torch.Tensor) -> torch.Tensor:
        if self.seen <= self.window:
            return buf[:, :, : self.seen]
        start = self.seen % self.window
        return torch.cat([buf[:, :, start:], buf[:, :, :start]], dim=2)

    def keys(self) -> torch.Tensor:
        if self._k is None:
            raise CourseError("the cache is empty: append some keys first")
        return self._ordered(self._k)

    def values(self) -> torch.Tensor:
        if self._v is None:
            raise CourseError("the cache is empty: append some values first")
        return self._ordered(self._v)

    def nbytes(self) -> int:
        """Bytes the buffers occupy (allocated once, at full window size)."""
        if self._k is None:
            return 0
        return self._k.numel() * self._k.element_size() * 2


# --------------------------------------------------------------------------------------------
# ALiBi
# --------------------------------------------------------------------------------------------

def alibi_slopes(n_heads: int) -> torch.Tensor:
    """ALiBi's per-head slopes (Press et al. 2022), float32 tensor of shape (n_heads,).

    For n a power of two: the geometric sequence 2^(-8/n), 2^(-16/n), ..., 2^(-8).
    Otherwise the paper's rule: the slopes of the closest power of two below n, followed by every
    other slope of twice that power (the odd-numbered ones) until there are n. Same as MPT and BLOOM.
    """
    _whole("n_heads", n_heads)

    def power_of_two(n: int) -> list[float]:
        start = 2.0 ** (-8.0 / n)
        return [start ** (i + 1) for i in range(n)]

    closest = 2 ** int(math.floor(math.log2(n_heads)))
    slopes = power_of_two(closest)
    if closest != n_heads:
        slopes += power_of_two(2 * closest)[0::2][: n_heads - closest]
    return torch.tensor(slopes, dtype=torch.float32)


def alibi_bias(n_heads: int, seq_len: int, kv_len: int | None = None) -> torch.Tensor:
    """The ALiBi bias, float32 (n_heads, seq_len, kv_len): bias[h, i, j] = -slope_h * (i - j).

    Added to the attention scores of a causal layer (together with `causal_mask`): the further back
    key j is, the larger the penalty. Queries are the last `seq_len` of `kv_len` positions.
    Entries above the diagonal are positive and must be masked; softmax ignores a constant added to
    a row, which is why MPT and BLOOM can store only `slope * j` (one row) and get the same weights.
    """
    slopes = alibi_slopes(n_heads)
    i, j = _positions(seq_len, kv_len, None)
    distance = (i - j).to(torch.float32)
    return -slopes[:, None, None] * distance[None]


# --------------------------------------------------------------------------------------------
# RoPE
# --------------------------------------------------------------------------------------------

def rope_frequencies(head_dim: int, base: float = 10000.0) -> torch.Tensor:
    """The rotation speeds theta_k = base^(-2k / head_dim), k = 0 .. head_dim/2 - 1 (radians per position)."""
    _whole("head_dim", head_dim)
    if head_dim % 2:
        raise CourseError(f"RoPE rotates pairs of dimensions: head_dim must be even, got {head_dim}")
    if not base > 0:
        raise CourseError(f"the RoPE base must be positive, got {base!r}")
    return 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """(x1, x2) -> (-x2, x1) on the two halves of the last dimension (Llama's layout)."""
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def rope_cos_sin(positions: torch.Tensor, head_dim: int, base: float = 10000.0) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of the rotation angles, shaped (*positions.shape, head_dim) (halves repeated)."""
    freqs = positions.to(torch.float32)[..., None] * rope_frequencies(head_dim, base).to(positions.device)
    angles = torch.cat((freqs, freqs), dim=-1)
    return angles.cos(), angles.sin()


def rope(x: torch.Tensor, positions: torch.Tensor | Sequence[int], base: float = 10000.0) -> torch.Tensor:
    """Rotary position embedding (Su et al. 2021) in Llama's half-split convention.

    x: (batch, heads, seq, head_dim) (or (..., seq, head_dim)); positions: (seq,) or (batch, seq)
    integer positions. Pair (d, d + head_dim/2) is rotated by the angle position * theta_d, so the
    dot product of a rotated query and key depends only on their distance.
    """
    x = _tensor("x", x)
    if x.dim() < 2:
        raise CourseError(f"x must be (..., seq, head_dim), got shape {tuple(x.shape)}")
    if not isinstance(positions, torch.Tensor):
        if not isinstance(positions, (list, tuple, range)):
            raise CourseError(f"positions must be a tensor or a list of integer positions (0, 1, 2, ...), "
                              f"got {positions!r} ({type(positions).__name__})")
        try:
            positions = torch.as_tensor(list(positions))
        except (TypeError, ValueError, RuntimeError):
            raise CourseError(f"positions must be integer positions (0, 1, 2, ...), got {positions!r}"[:200]) from None
    if positions.is_floating_point() or positions.dtype == torch.bool:
        raise CourseError("positions must be integer positions (0, 1, 2, ...)")
    seq, head_dim = x.shape[-2], x.shape[-1]
    if positions.shape[-1] != seq:
        raise CourseError(f"{positions.shape[-1]} positions given for a sequence of {seq} tokens")
    cos, sin = rope_cos_sin(positions.to(x.device), head_dim, base)
    if positions.dim() == 2:  # (batch, seq) -> (batch, 1, seq, head_dim), broadcast over heads
        if x.dim() != 4 or positions.shape[0] not in (1, x.shape[0]):
            raise CourseError(f"positions of shape {tuple(positions.shape)} need x shaped (batch, heads, seq, head_dim)")
        cos, sin = cos[:, None], sin[:, None]
    elif positions.dim() != 1:
        raise CourseError(f"positions must be (seq,) or (batch, seq), got shape {tuple(positions.shape)}")
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    return x * cos + rotate_half(x) * sin


# --------------------------------------------------------------------------------------------
# KV-cache size
# --------------------------------------------------------------------------------------------

def kv_cache_bytes(layers: int, kv_heads: int, head_dim: int, seq_len: int, batch: int = 1,
                   bytes_per_element: float = 2.0) -> int:
    """Bytes of the key/value cache: 2 (K and V) x layers x KV heads x head dim x tokens x batch x bytes.

    >>> kv_cache_bytes(layers=30, kv_heads=3, head_dim=64, seq_len=8192, batch=1, bytes_per_element=2)
    188743680
    """
    values = {"layers": layers, "kv_heads": kv_heads, "head_dim": head_dim, "seq_len": seq_len, "batch": batch}
    for what, value in values.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise CourseError(f"{what} must be a whole number >= 0, got {value!r}")
    if bytes_per_element <= 0:
        raise CourseError(f"bytes_per_element must be positive, got {bytes_per_element!r}")
    return int(2 * layers * kv_heads * head_dim * seq_len * batch * bytes_per_element)


# --------------------------------------------------------------------------------------------
# tiled (online-softmax) attention: the idea behind FlashAttention (lesson 4)
# --------------------------------------------------------------------------------------------

def tiled_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, block: int = 64, causal: bool = False,
                    scale: float | None = None, query_block: int | None = None) -> torch.Tensor:
    """Exact attention computed one block of keys at a time with an online softmax (Milakov & Gimelshein
    2018; the idea FlashAttention builds on, Dao et al. 2022).

    For each block of `query_block` queries (default: all of them) it walks over the keys `block` at a
    time, keeping per query a running maximum m, a running sum of exp(score - m) and a running
    weighted sum of values; when a block raises the maximum, the old sums are rescaled by
    exp(m_old - m_new). At the end, output = weighted sum / sum: the same numbers as
    softmax(q k^T * scale) v, without ever building the (queries x keys) score matrix.

    q: (batch, heads, queries, head_dim); k, v: (batch, heads, keys, head_dim) with keys >= queries when
    `causal` (the queries are then the last positions, as in `causal_mask`). A query that sees no key
    gets zeros (as `scaled_dot_product_attention` does).
    """
    for what, t in (("q", q), ("k", k), ("v", v)):
        if _tensor(what, t).dim() != 4:
            raise CourseError(f"{what} must be (batch, heads, seq, head_dim), got shape {tuple(t.shape)}")
    if q.shape[:2] != k.shape[:2] or k.shape[:3] != v.shape[:3]:
        raise CourseError(f"q {tuple(q.shape)}, k {tuple(k.shape)} and v {tuple(v.shape)} must agree in batch and "
                          "heads, and k and v in length (for fewer KV heads, repeat_kv them first)")
    if q.shape[-1] != k.shape[-1]:
        raise CourseError(f"q and k must have the same head_dim (last dimension): {q.shape[-1]} != {k.shape[-1]}")
    block = _whole("block", block)
    n_q, n_k = q.shape[2], k.shape[2]
    query_block = max(n_q, 1) if query_block is None else _whole("query_block", query_block)
    if causal and n_k < n_q:
        raise CourseError(f"with causal=True there must be at least as many keys ({n_k}) as queries ({n_q}): "
                          "the queries are the last positions")
    if scale is None:
        scale = 1.0 / math.sqrt(q.shape[-1])
    b, h, _, d = q.shape
    dtype = torch.promote_types(q.dtype, torch.float32)   # accumulate in at least float32
    outputs = []
    for q_start in range(0, n_q, query_block):
        qb = q[:, :, q_start:q_start + query_block].to(dtype)
        rows = qb.shape[2]
        q_pos = torch.arange(n_k - n_q + q_start, n_k - n_q + q_start + rows, device=q.device)[:, None]
        m = torch.full((b, h, rows, 1), float("-inf"), dtype=dtype, device=q.device)   # running max
        s = torch.zeros((b, h, rows, 1), dtype=dtype, device=q.device)                 # running sum
        acc = torch.zeros((b, h, rows, v.shape[-1]), dtype=dtype, device=q.device)     # running output
        for k_start in range(0, n_k, block):
            kb = k[:, :, k_start:k_start + block].to(dtype)
            vb = v[:, :, k_start:k_start + block].to(dtype)
            scores = torch.matmul(qb, kb.transpose(-2, -1)) * scale
            if causal:
                k_pos = torch.arange(k_start, k_start + kb.shape[2], device=q.device)[None, :]
                if bool((k_pos > q_pos).all()):
                    continue                                 # a block entirely in the future: skip it
                scores = scores.masked_fill(k_pos > q_pos, float("-inf"))
            m_new = torch.maximum(m, scores.amax(dim=-1, keepdim=True))
            safe = torch.where(torch.isinf(m_new), torch.zeros_like(m_new), m_new)   # rows with no key yet
            p = torch.exp(scores - safe)
            correction = torch.exp(m - safe)
            s = s * correction + p.sum(dim=-1, keepdim=True)
            acc = acc * correction + torch.matmul(p, vb)
            m = m_new
        outputs.append(torch.where(s > 0, acc / s.clamp_min(torch.finfo(dtype).tiny), torch.zeros_like(acc)))
    return torch.cat(outputs, dim=2).to(v.dtype)

from .checks import guard_public as _guard_public  # noqa: E402 - issue 20: typed arguments checked on entry

_guard_public(globals())
