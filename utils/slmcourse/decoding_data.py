"""Lesson 13's heavier figures, precomputed by `utils/precompute_decoding.py` and shipped as
`data/decoding_precomputed.json`: today all 16 items of the extraction task, free and JSON-constrained, with
SmolLM2-135M-Instruct (the lesson runs the first few live). The script's `--only kv` part (KV-cache quantization on
SmolLM2-135M and Gemma-3-270M) adds a 'kv' key when it is run. `load` checks the file's SHA-256, so a changed file
is noticed instead of silently shown.
"""
from __future__ import annotations

import hashlib
import json

from .errors import CourseError

FILE = "decoding_precomputed.json"
SHA256 = "327d426d1212dd2e7db210bd177b382218166f2b1f10c2026537d55d0c1793d4"


def load() -> dict:
    """The shipped results (keys 'extraction', 'made_by', and 'kv' once run), after checking their SHA-256."""
    from importlib import resources

    data = (resources.files("slmcourse") / "data" / FILE).read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != SHA256:
        raise CourseError(f"{FILE} has SHA-256 {digest[:16]}..., not the recorded {SHA256[:16]}...: the file was "
                          "changed; re-run utils/precompute_decoding.py and record the new digest in "
                          "slmcourse/decoding_data.py")
    return json.loads(data)


from .checks import guard_public as _guard_public  # noqa: E402 - issue 20: typed arguments checked on entry

_guard_public(globals())
