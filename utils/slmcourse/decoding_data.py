"""Lesson 13's heavier figures, precomputed by `utils/precompute_decoding.py` and shipped as
`data/decoding_precomputed.json`: KV-cache quantization on SmolLM2-135M and Gemma-3-270M (`--only kv`: perplexity at
64 and 256 tokens of context, top-1 agreement with the float32 cache) and all 16 extraction items, free and
JSON-constrained, with SmolLM2-135M-Instruct (`--only extraction`; the lesson runs the first few live). `load` checks
the file's SHA-256, so a changed file is noticed instead of silently shown.
"""
from __future__ import annotations

FILE = "decoding_precomputed.json"
SHA256 = "b7f7aae11ed795ac8c7a077dc34ff06da5236853a59ed119d230ca709beb0c71"


def load() -> dict:
    """The shipped results (keys 'kv', 'extraction', 'made_by'), after checking their SHA-256."""
    from .bundled import shipped_json

    return shipped_json(FILE, SHA256, "utils/precompute_decoding.py", "slmcourse/decoding_data.py")


from .checks import guard_public as _guard_public  # noqa: E402 - issue 20: typed arguments checked on entry

_guard_public(globals())
