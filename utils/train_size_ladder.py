"""Train the course's size ladder (lesson 10) and write its weights and checksums.

    nice -n 10 .venv/bin/python utils/train_size_ladder.py      # a few minutes on 2 CPU cores

Four Llama-architecture models (slmcourse.ladder.SIZES) with the same byte-level tokenizer, the same
training text and the same recipe (slmcourse.ladder.RECIPE: 200 steps x 16 sequences x 96 bytes =
307,200 training tokens each, AdamW lr 3e-3 with 20 warm-up steps then cosine decay, weight decay
0.1, seed 0). The text: every `train` item of the three eval tasks, formatted exactly as the lesson's
prompts with the answer (`Question: ... Answer: ...`), shuffled, plus the course's distillation text
(data/distill_train.txt), joined by blank lines. No test or dev question is in it (the generator
keeps them apart; tests/test_evaluate.py checks it).

Output: utils/slmcourse/data/ladder/<name>.safetensors (bfloat16) and SHA256SUMS, and
ladder_train.json (loss curves, parameters, seconds).
"""
from __future__ import annotations

import hashlib
import json
import math
import random
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from slmcourse import evaluate, ladder  # noqa: E402
from slmcourse.training import read_data  # noqa: E402


def training_text() -> str:
    docs = []
    for name in evaluate.TASKS:
        for item in evaluate.load_items(name, "train"):
            docs.append(evaluate.format_question(name, item) + " " + evaluate.gold_text(item))
    docs += [p.strip() for p in read_data("distill_train.txt").split("\n") if p.strip()]
    random.Random(0).shuffle(docs)
    return "\n\n".join(docs) + "\n\n"


def batches(data: torch.Tensor, steps: int, batch: int, context: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        starts = torch.randint(0, len(data) - context - 1, (batch,), generator=g)
        yield torch.stack([data[s:s + context + 1] for s in starts.tolist()])


def train(name: str, data: torch.Tensor) -> dict:
    r = ladder.RECIPE
    model = ladder.build(name, seed=r["seed"]).train()
    opt = torch.optim.AdamW(model.parameters(), lr=r["lr"], weight_decay=r["weight_decay"], betas=(0.9, 0.95))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / r["warmup"]) * 0.5 * (
        1 + math.cos(math.pi * min(s, r["steps"]) / r["steps"])))
    losses, t0 = [], time.time()
    for step, xy in enumerate(batches(data, r["steps"], r["batch"], r["context"], r["seed"])):
        loss = model(input_ids=xy[:, :-1], labels=xy[:, :-1].clone()).loss  # transformers shifts the labels
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(round(loss.item(), 4))
        if step % 25 == 0:
            print(f"  {name} step {step}: loss {loss.item():.3f} ({time.time() - t0:.0f} s)", flush=True)
    seconds = time.time() - t0
    from safetensors.torch import save_file
    state = {k: v.detach().to(torch.bfloat16).contiguous() for k, v in model.state_dict().items()
             if k != "lm_head.weight"}
    ladder.LADDER_DIR.mkdir(parents=True, exist_ok=True)
    save_file(state, str(ladder.weights_file(name)))
    return {"parameters": ladder.parameters(name), "seconds": round(seconds, 1), "losses": losses}


def main() -> None:
    """`train_size_ladder.py` trains all four; `train_size_ladder.py ladder-m` one (then `--sums` to list them)."""
    torch.set_num_threads(1)
    names = [a for a in sys.argv[1:] if not a.startswith("--")] or list(ladder.SIZES)
    if "--sums" in sys.argv:
        return write_sums()
    text = training_text()
    data = torch.tensor(list(text.encode("utf-8")), dtype=torch.long)
    print(f"training text: {len(data):,} bytes; budget per model: {ladder.TOKENS_SEEN:,} tokens")
    path = ladder.LADDER_DIR / "ladder_train.json"
    report = json.loads(path.read_text()) if path.is_file() else {"models": {}}
    report.update({"recipe": ladder.RECIPE, "text_bytes": len(data)})
    for name in names:
        report["models"][name] = train(name, data)
        print(f"{name}: {report['models'][name]['parameters']:,} parameters, "
              f"{report['models'][name]['seconds']} s", flush=True)
        latest = json.loads(path.read_text()) if path.is_file() else {"models": {}}  # others may run in parallel
        latest.update({"recipe": ladder.RECIPE, "text_bytes": len(data)})
        latest["models"][name] = report["models"][name]
        path.write_text(json.dumps(latest) + "\n")
    if set(names) == set(ladder.SIZES):
        write_sums()


def write_sums() -> None:
    sums = []
    for name in ladder.SIZES:
        path = ladder.weights_file(name)
        if not path.is_file():
            continue
        sums.append(f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {path.name}")
    (ladder.LADDER_DIR / "SHA256SUMS").write_text("\n".join(sums) + "\n")
    print("\n".join(sums))


if __name__ == "__main__":
    main()
