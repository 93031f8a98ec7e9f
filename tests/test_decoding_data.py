"""The shipped decoding figures (utils/precompute_decoding.py): checksum, and every extraction item in both modes."""
import hashlib
import json
from pathlib import Path

import pytest

from slmcourse import constrained, decoding_data
from slmcourse.errors import CourseError

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "utils" / "slmcourse" / "data"
SCHEMA = {"name": "string", "age": "integer", "city": "string"}


def test_checksum_matches_and_every_item_is_there_in_both_modes():
    raw = (DATA / decoding_data.FILE).read_bytes()
    assert hashlib.sha256(raw).hexdigest() == decoding_data.SHA256
    d = decoding_data.load()
    items = [json.loads(line) for line in (DATA / "extraction.jsonl").open()]
    assert len(items) == 16
    for mode in ("free", "constrained"):
        assert [r["sentence"] for r in d["extraction"] if r["mode"] == mode] == [i["text"] for i in items]
    caches = ["float32 cache", "int8 per token", "int4 per token", "int4 keys per channel"]
    for model in ("smollm2-135m", "gemma-3-270m"):
        rows = [r for r in d["kv"] if r["model"] == model]
        assert [r["cache"] for r in rows] == caches
        assert rows[0]["top-1 agreement @ 256"] == 1.0          # the float32 cache agrees with itself
        assert all(0 < r["top-1 agreement @ 256"] <= 1 and r["ppl @ 64"] > 1 and r["ppl @ 256"] > 1 for r in rows)


def test_recorded_verdicts_follow_from_the_recorded_answers():
    """valid / correct are recomputed from each stored answer, so the shipped rates cannot be edited by hand."""
    gold = {i["text"]: i for i in (json.loads(line) for line in (DATA / "extraction.jsonl").open())}
    for row in decoding_data.load()["extraction"]:
        obj = constrained.parse_object(row["answer"], SCHEMA)
        assert row["valid"] == (obj is not None)
        assert row["correct"] == (obj is not None and all(obj[k] == gold[row["sentence"]][k] for k in SCHEMA))
    assert all(r["valid"] for r in decoding_data.load()["extraction"] if r["mode"] == "constrained")


def test_a_changed_file_is_refused(monkeypatch):
    monkeypatch.setattr(decoding_data, "SHA256", "0" * 64)
    with pytest.raises(CourseError, match="re-run utils/precompute_decoding.py"):
        decoding_data.load()
