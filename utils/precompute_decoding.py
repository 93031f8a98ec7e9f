"""Lesson 13's heavier figures, precomputed once and shipped (the lesson shows them beside its live subset).

    python utils/precompute_decoding.py            # both parts, through `flock /tmp/heavy.lock` on a shared machine
    python utils/precompute_decoding.py --only kv  # or: --only extraction

- `kv`: KV-cache quantization (float32 / int8 per token / int4 per token / int4 keys per channel) on SmolLM2-135M
  AND Gemma-3-270M: perplexity (the course's protocol, window = context, stride = context / 2) at 64 and 256 tokens
  of context, and top-1 agreement with the float32 cache over the first 256 tokens. The lesson runs SmolLM2 live
  and shows Gemma from here (loading a second model would take it past mybinder's 2 GB).
- `extraction`: all 16 items of data/extraction.jsonl, free and JSON-constrained greedy decoding with
  SmolLM2-135M-Instruct: valid share and task accuracy (the lesson runs the first 6 live).

Writes utils/slmcourse/data/decoding_precomputed.json (the parts not run keep their previous figures).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "utils"))
OUT = ROOT / "utils" / "slmcourse" / "data" / "decoding_precomputed.json"

KV_VARIANTS = {"float32 cache": None, "int8 per token": (8, "token", "token"), "int4 per token": (4, "token", "token"),
               "int4 keys per channel": (4, "channel", "token")}
KV_MODELS = ("smollm2-135m", "gemma-3-270m")
SCHEMA = {"name": "string", "age": "integer", "city": "string"}
MAX_NEW = 40


@torch.no_grad()
def kv_rows(name: str) -> list[dict]:
    """The lesson's KV-cache quantization table for one model (the same code as its cell)."""
    from slmcourse import kvquant, load
    from slmcourse.perplexity import heldout_text, perplexity

    model, tok = load(name, device="cpu")
    text_ids = tok(heldout_text(), return_tensors="pt").input_ids[0]
    ref = model(text_ids[None, :256]).logits[0].argmax(-1)
    rows = []
    for variant, v in KV_VARIANTS.items():
        wrapped = model if v is None else kvquant.CacheWrapped(model, *v)
        row = {"model": name, "cache": variant, "text_tokens": int(len(text_ids))}
        for ctx in (64, 256):
            row[f"ppl @ {ctx}"] = round(perplexity(wrapped, ids=text_ids, context=ctx, stride=ctx // 2), 2)
        agree = (wrapped(text_ids[None, :256]).logits[0].argmax(-1) == ref).float().mean()
        row["top-1 agreement @ 256"] = round(float(agree), 3)
        rows.append(row)
        print(f"  {name:<14} {variant:<22} {row}", flush=True)
    del model
    return rows


def extraction_prompt(tok, sentence: str) -> torch.Tensor:
    """The lesson's extraction prompt (its cell `extraction_prompt`)."""
    request = ("Extract the person's name, age and city from this sentence as JSON with keys name, age, city.\n"
               f"Sentence: {sentence}")
    return tok.apply_chat_template([{"role": "user", "content": request}], add_generation_prompt=True,
                                   return_tensors="pt", return_dict=True)["input_ids"]


def extraction_rows() -> list[dict]:
    """Every extraction item, free and constrained (the lesson's loop, over all items)."""
    from slmcourse import constrained, load

    model, tok = load("smollm2-135m", device="cpu")
    parts, texts, eos = constrained.json_schema_parts(SCHEMA), constrained.token_texts(tok), tok.eos_token_id
    items = [json.loads(line) for line in (ROOT / "utils" / "slmcourse" / "data" / "extraction.jsonl").open()]
    rows = []
    for item in items:
        p_ids = extraction_prompt(tok, item["text"])
        for mode, use in (("free", None), ("constrained", parts)):
            answer = tok.decode(constrained.constrained_generate(model, p_ids, use, texts, eos, MAX_NEW))
            obj = constrained.parse_object(answer, SCHEMA)
            rows.append({"sentence": item["text"], "mode": mode, "valid": obj is not None,
                         "correct": obj is not None and all(obj[k] == item[k] for k in SCHEMA), "answer": answer})
        print(f"  {item['text'][:40]:<40} {[(r['mode'], r['valid'], r['correct']) for r in rows[-2:]]}", flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["kv", "extraction"])
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.manual_seed(0)
    torch.set_num_threads(2)
    result = json.loads(OUT.read_text()) if OUT.is_file() else {}
    start = time.perf_counter()
    if args.only in (None, "kv"):
        result["kv"] = [row for name in KV_MODELS for row in kv_rows(name)]
    if args.only in (None, "extraction"):
        result["extraction"] = extraction_rows()
    result["made_by"] = ("python utils/precompute_decoding.py", f"torch {torch.__version__}, {platform.machine()}",
                         f"{time.perf_counter() - start:.0f} s")
    OUT.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    print(f"written: {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
