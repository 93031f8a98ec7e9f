"""Attention maths from scratch: masks, grouped-query attention, ALiBi, RoPE, KV-cache sizes.

Pure functions on torch tensors shaped (batch, heads, seq, head_dim) unless stated otherwise.
"""
from __future__ import annotations

from .errors import CourseError


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
