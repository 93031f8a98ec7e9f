"""KV-cache quantization and prefix caching.

The KV cache grows with every token: 2 x layers x KV heads x head size numbers per token. At long
contexts it outgrows the weights of a small model, so runtimes store it in 8 or 4 bits. Each group of
numbers is stored as integers q in [0, 2^bits - 1] with a scale and a zero point (asymmetric, min-max):

    x ~= q * scale + minimum,    scale = (max - min) / (2^bits - 1)

The group is either **per token** (one scale per token and head, across its head_dim channels) or
**per channel** (one scale per channel, across the tokens of the block). Keys have a few channels of
large magnitude, so KIVI (Liu et al. 2024) quantizes keys per channel and values per token.

`fake_quantize` rounds a tensor the way a quantized cache stores it and gives back floats;
`QuantizedKVCache` is a transformers DynamicCache whose layers keep what they store quantized-and-
dequantized (so attention sees the rounding), for measuring quality. `kv_bytes` prices a cache.
`prefill` and `reuse_prefix` are prefix caching: run a shared system prompt once, copy its cache for
every request.
"""
from __future__ import annotations

import copy

import torch

from .errors import CourseError

AXES = ("token", "channel")


def _check(x: torch.Tensor, bits: int, axis: str) -> None:
    if not torch.is_tensor(x) or not torch.is_floating_point(x) or x.ndim < 2:
        raise CourseError("x must be a floating-point tensor (..., tokens, head_dim)")
    if isinstance(bits, bool) or bits not in (2, 3, 4, 8):
        raise CourseError(f"bits must be 2, 3, 4 or 8, got {bits!r}")
    if axis not in AXES:
        raise CourseError(f"axis must be 'token' (one scale per token, across channels) or 'channel' "
                          f"(one scale per channel, across tokens), got {axis!r}")


def quantize(x: torch.Tensor, bits: int = 8, axis: str = "token"):
    """Min-max quantization of a (..., tokens, head_dim) tensor: returns (q as uint8, scale, minimum)."""
    _check(x, bits, axis)
    dim = -1 if axis == "token" else -2                # per token: reduce over channels; per channel: over tokens
    lo, hi = x.amin(dim, keepdim=True), x.amax(dim, keepdim=True)
    scale = ((hi - lo) / (2 ** bits - 1)).clamp_min(1e-8)
    q = torch.round((x - lo) / scale).clamp(0, 2 ** bits - 1).to(torch.uint8)
    return q, scale, lo


def dequantize(q: torch.Tensor, scale: torch.Tensor, minimum: torch.Tensor) -> torch.Tensor:
    """Back to floats: q * scale + minimum."""
    return q.to(scale.dtype) * scale + minimum


def fake_quantize(x: torch.Tensor, bits: int = 8, axis: str = "token") -> torch.Tensor:
    """x rounded to `bits` per number the way a quantized cache stores it (same dtype as x)."""
    return dequantize(*quantize(x.float(), bits, axis)).to(x.dtype)


def max_error(x: torch.Tensor, bits: int = 8, axis: str = "token") -> torch.Tensor:
    """The bound on |fake_quantize(x) - x| for each group: half a step, scale / 2."""
    _, scale, _ = quantize(x.float(), bits, axis)
    return scale / 2


def kv_bytes(n_layers: int, n_kv_heads: int, head_dim: int, tokens: int, bits: int = 16, axis: str = "token",
             scale_bits: int = 16) -> int:
    """Bytes of a KV cache (keys + values) for `tokens` tokens; below 16 bits adds a scale and a minimum per group.

    Per token: one (scale, minimum) per head and token. Per channel: one per head and channel for each
    block of `tokens` (a single block here).
    """
    for name, v in (("n_layers", n_layers), ("n_kv_heads", n_kv_heads), ("head_dim", head_dim), ("tokens", tokens)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise CourseError(f"{name} must be a whole number >= 1, got {v!r}")
    if bits not in (2, 3, 4, 8, 16, 32):
        raise CourseError(f"bits must be one of 2, 3, 4, 8, 16, 32, got {bits!r}")
    numbers = 2 * n_layers * n_kv_heads * head_dim * tokens
    groups = 0
    if bits < 16:
        groups = 2 * n_layers * n_kv_heads * (tokens if axis == "token" else head_dim)
    return (numbers * bits + groups * 2 * scale_bits + 7) // 8


def _quantized_layer_class():
    from transformers.cache_utils import DynamicLayer

    class FakeQuantLayer(DynamicLayer):
        """A cache layer that stores keys and values rounded to `bits` (as floats, to measure the effect)."""

        def __init__(self, bits: int, key_axis: str, value_axis: str, **kwargs):
            super().__init__(**kwargs)
            self.bits, self.key_axis, self.value_axis = bits, key_axis, value_axis

        def update(self, key_states, value_states, *args, **kwargs):
            key_states = fake_quantize(key_states, self.bits, self.key_axis)
            value_states = fake_quantize(value_states, self.bits, self.value_axis)
            return super().update(key_states, value_states, *args, **kwargs)

    return FakeQuantLayer


def QuantizedKVCache(model, bits: int = 8, key_axis: str = "token", value_axis: str = "token"):
    """A transformers cache for `model` whose keys and values are rounded to `bits` as they are stored.

    Each call's new keys and values form the quantization block (per channel: the tokens of that call).
    Pass it as `model(ids, past_key_values=QuantizedKVCache(model, 4, "channel", "token"))`.
    """
    from transformers import DynamicCache

    _check(torch.zeros(1, 2), bits, key_axis)
    _check(torch.zeros(1, 2), bits, value_axis)
    layer = _quantized_layer_class()
    cache = DynamicCache(config=model.config)
    cache.layers = [layer(bits, key_axis, value_axis) for _ in cache.layers]
    return cache


class CacheWrapped(torch.nn.Module):
    """`model` run with a fresh QuantizedKVCache on every call: plug it into `perplexity()`."""

    def __init__(self, model, bits: int, key_axis: str = "token", value_axis: str = "token"):
        super().__init__()
        self.model, self.bits, self.key_axis, self.value_axis = model, bits, key_axis, value_axis

    def forward(self, input_ids, **kwargs):
        cache = QuantizedKVCache(self.model, self.bits, self.key_axis, self.value_axis)
        return self.model(input_ids=input_ids, past_key_values=cache, use_cache=True, **kwargs)


# ---------------------------------------------------------------------------------------------
# Prefix caching
# ---------------------------------------------------------------------------------------------
@torch.no_grad()
def prefill(model, ids: torch.Tensor, cache=None):
    """Run `ids` (1, n) through the model, extending `cache` (a fresh one if None); returns (logits, cache)."""
    if not torch.is_tensor(ids) or ids.ndim != 2 or ids.shape[0] != 1 or ids.shape[1] < 1:
        raise CourseError("ids must be a (1, n) tensor of token ids with n >= 1")
    from transformers.cache_utils import Cache

    if cache is not None and not isinstance(cache, Cache):
        raise CourseError(f"cache must be None or a transformers Cache (the second value prefill returned), "
                          f"got {type(cache).__name__}")
    out = model(input_ids=ids, past_key_values=cache, use_cache=True)
    return out.logits, out.past_key_values


def reuse_prefix(model, prefix_cache, suffix_ids: torch.Tensor):
    """Prefix caching: copy the shared prefix's cache and run only the request's own tokens on top of it."""
    if prefix_cache is None:
        raise CourseError("reuse_prefix needs the prefix's cache (from prefill)")
    return prefill(model, suffix_ids, copy.deepcopy(prefix_cache))

from .checks import guard_public as _guard_public  # noqa: E402 - issue 20: typed arguments checked on entry

_guard_public(globals())
