"""Precompute lesson 11's fine-tuning ablation and its QLoRA-in-miniature comparison (run once, about 10 minutes of CPU time, one thread).

    HF_HUB_OFFLINE=1 .venv/bin/python utils/finetune_ablation.py

For every rank x target-module set, LoRA-SFT of SmolLM2-135M-Instruct on the 40 beekeeping pairs in its chat
template (the lesson's recipe: one conversation a step, AdamW lr 1e-3, 3 warm-up steps, seed 0, one thread),
evaluated after STEPS steps (each its own run, own schedule) on
  - the 24 held-out multiple-choice questions (log-likelihood, acc_norm; per-item results kept for intervals),
  - the held-out answer perplexity (8 pairs),
  - general-text perplexity with the course's protocol (forgetting).
QLoRA in miniature: the same run (r=16, all seven Linear layers, the fewest steps) on a base whose Linear weights are
rounded to bfloat16, and on one quantized to 4 bits (lesson 9's quantizer, zero-point, groups of 32).

Writes utils/slmcourse/data/finetune_ablation.json and prints its SHA-256 (slmcourse.ablation checks it on load).
"""
from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

from slmcourse import load, lora, perplexity, quant, sft, training  # noqa: E402

RANKS = [2, 16]
TARGETS = {"q, v": ["q_proj", "v_proj"],
           "all linear": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]}
STEPS = [10, 30]
ALPHA, LR = 16, 1e-3
OUT = ROOT / "slmcourse" / "data" / "finetune_ablation.json"


def scores(model, tok, mc_items, heldout):
    model.eval()
    correct = sft.mc_correct(model, tok, mc_items)
    return {"mc_correct": [int(c) for c in correct],
            "accuracy": sum(correct) / len(correct),
            "answer_ppl": round(sft.answer_perplexity(model, heldout), 3),
            "general_ppl": round(perplexity.heldout_perplexity(model, tok), 3)}


def fresh(base: str):
    model, tok = load("smollm2-135m", device="cpu")
    info = {"base": base}
    layers = quant.linear_layers(model)
    if base == "bf16":
        with torch.no_grad():
            for _, m in layers:
                m.weight.copy_(m.weight.bfloat16().float())
        info["linear_weight_bytes"] = sum(2 * m.weight.numel() for _, m in layers)
    elif base == "4-bit":
        report = quant.quantize_model(model, bits=4, scheme="zeropoint", group_size=32)
        info["linear_weight_bytes"] = sum(l["storage_bytes"] for l in report.layers)
    else:
        info["linear_weight_bytes"] = sum(4 * m.weight.numel() for _, m in layers)
    info["model_bytes"] = (quant.model_size_bytes(model) - sum(4 * m.weight.numel() for _, m in layers)
                           + info["linear_weight_bytes"])
    return model, tok, info


def run(base: str, rank: int, target_name: str, steps: int, mc_items, qa_train, qa_heldout):
    """One complete run (its own warm-up and cosine schedule over `steps`), then its scores."""
    model, tok, info = fresh(base)
    train_examples, heldout = sft.chat_examples(tok, qa_train), sft.chat_examples(tok, qa_heldout)
    lora.inject_lora(model, TARGETS[target_name], r=rank, alpha=ALPHA, seed=0)
    trainable = lora.trainable_summary(model)["trainable"]
    schedule = training.batch_schedule(len(train_examples), 1, steps, seed=0)

    def step_loss(step):
        ids, labels = train_examples[int(schedule[step][0])]
        return model(input_ids=ids[None], labels=labels[None]).loss

    training.seed_everything(0)
    t0 = time.time()
    history = training.train(model, step_loss, steps, lr=LR, warmup=3, progress=False)
    train_s = time.time() - t0
    result = {"base": base, "rank": rank, "targets": target_name, "steps": steps, "trainable": trainable, **info,
              "final_loss": round(history.final, 4), "train_s": round(train_s, 1),
              **scores(model, tok, mc_items, heldout)}
    print({k: v for k, v in result.items() if k != "mc_correct"}, flush=True)
    return result


def save(out) -> None:
    OUT.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    print(OUT, "SHA-256", hashlib.sha256(OUT.read_bytes()).hexdigest(), flush=True)


def main():
    """QLoRA first (4-bit and bf16 base, rank 16 on all Linear layers, the fewest steps), then the grid, then the
    untrained bf16 / 4-bit bases. The file is rewritten after every run and a restart keeps the runs already in it,
    so an interrupted run still leaves every finished result (`complete` says whether all ran)."""
    training.seed_everything(0, threads=1)
    mc_items, qa_train, qa_heldout = sft.read_mc(), sft.read_qa("domain_qa_train.txt"), sft.read_qa("domain_qa_heldout.txt")
    recipe = {"model": "smollm2-135m", "alpha": ALPHA, "lr": LR, "warmup": 3, "seed": 0, "ranks": RANKS,
              "targets": TARGETS, "steps": STEPS, "qlora": {"rank": 16, "targets": "all linear", "steps": min(STEPS)},
              "torch": torch.__version__,
              "quantizer": "slmcourse.quant.quantize_model(bits=4, scheme='zeropoint', group_size=32)"}
    out = {"recipe": recipe, "before": {}, "runs": [], "qlora": [], "complete": False}
    if OUT.exists():
        old = json.loads(OUT.read_text(encoding="utf-8"))
        if {k: v for k, v in old["recipe"].items() if k != "qlora"} == {k: v for k, v in recipe.items() if k != "qlora"}:
            out.update(before=old["before"], runs=old["runs"], qlora=old.get("qlora", []))
    done = {(r["base"], r["rank"], r["targets"], r["steps"]) for r in out["runs"] + out["qlora"]}
    if "fp32" not in out["before"]:
        model, tok, info = fresh("fp32")
        out["before"]["fp32"] = {**info, **scores(model, tok, mc_items, sft.chat_examples(tok, qa_heldout))}
        del model
    for base in ["4-bit", "bf16"]:
        if (base, 16, "all linear", min(STEPS)) not in done:
            out["qlora"].append(run(base, 16, "all linear", min(STEPS), mc_items, qa_train, qa_heldout))
            save(out)
    for target_name in reversed(list(TARGETS)):
        for rank in reversed(RANKS):
            for steps in STEPS:
                if ("fp32", rank, target_name, steps) not in done:
                    out["runs"].append(run("fp32", rank, target_name, steps, mc_items, qa_train, qa_heldout))
                    save(out)
    for base in ["4-bit", "bf16"]:
        if base not in out["before"]:
            model, tok, info = fresh(base)
            out["before"][base] = {**info, **scores(model, tok, mc_items, sft.chat_examples(tok, qa_heldout))}
            del model
            save(out)
    out["complete"] = True
    save(out)


if __name__ == "__main__":
    main()
