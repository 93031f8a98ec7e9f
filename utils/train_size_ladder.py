"""Train the course's size ladder (lesson 10) and write its weights and checksums.

    nice -n 10 .venv/bin/python utils/train_size_ladder.py      # about 5 minutes on 2 idle CPU cores

Four Llama-architecture models (slmcourse.ladder.SIZES) with the same byte-level tokenizer, the same
training text and the same recipe (slmcourse.ladder.RECIPE: 1,000 steps x 16 sequences x 96 bytes =
1,536,000 training tokens each, AdamW lr 3e-3 with 20 warm-up steps then cosine decay, weight decay
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


def train(name: str, data: torch.Tensor, out_dir: Path | None = None, recipe: dict | None = None) -> dict:
    r = recipe or ladder.RECIPE
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
    out_dir = out_dir or ladder.LADDER_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    save_file(state, str(out_dir / ladder.weights_file(name).name))
    return {"parameters": ladder.parameters(name), "seconds": round(seconds, 1), "losses": losses}


def main() -> None:
    """`train_size_ladder.py` trains all four; `train_size_ladder.py ladder-m` one (then `--sums` to list them).

    `--dir PATH` writes the weights and ladder_train.json there instead of data/ladder/ (to try another budget
    without touching the shipped files); `--steps N` overrides RECIPE's steps (the budget: N x 16 x 96 tokens)."""
    torch.set_num_threads(1)
    args = sys.argv[1:]
    value = {flag: args[args.index(flag) + 1] for flag in ("--dir", "--steps") if flag in args}
    names = [a for i, a in enumerate(args) if not a.startswith("--") and (i == 0 or args[i - 1] not in value)]
    names = names or list(ladder.SIZES)
    out_dir = Path(value["--dir"]) if "--dir" in value else ladder.LADDER_DIR
    recipe = dict(ladder.RECIPE, steps=int(value["--steps"])) if "--steps" in value else ladder.RECIPE
    if "--sums" in args:
        return write_sums(out_dir)
    text = training_text()
    data = torch.tensor(list(text.encode("utf-8")), dtype=torch.long)
    budget = recipe["steps"] * recipe["batch"] * recipe["context"]
    print(f"training text: {len(data):,} bytes; budget per model: {budget:,} tokens")
    path = out_dir / "ladder_train.json"
    for name in names:
        result = train(name, data, out_dir, recipe)
        print(f"{name}: {result['parameters']:,} parameters, {result['seconds']} s", flush=True)
        latest = json.loads(path.read_text()) if path.is_file() else {"models": {}}  # others may run in parallel
        latest.update({"recipe": recipe, "text_bytes": len(data)})
        latest["models"][name] = result
        path.write_text(json.dumps(latest) + "\n")
    if set(names) == set(ladder.SIZES):
        write_sums(out_dir)


def write_sums(out_dir: Path | None = None) -> None:
    out_dir = out_dir or ladder.LADDER_DIR
    sums = []
    for name in ladder.SIZES:
        path = out_dir / ladder.weights_file(name).name
        if not path.is_file():
            continue
        sums.append(f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {path.name}")
    (out_dir / "SHA256SUMS").write_text("\n".join(sums) + "\n")
    print("\n".join(sums))


if __name__ == "__main__":
    main()
