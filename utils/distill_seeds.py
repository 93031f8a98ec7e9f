"""Lesson 8's slow experiments, run once and shipped as a small data file (distill_seeds.json).

Lesson 8 trains one distilled student live. Whether the soft targets help, and whether T = 2 beats
T = 1, cannot be read from one run: two runs that differ only in the random seed differ too. So this
script repeats the lesson's decoder experiment with three seeds for each of three set-ups, exactly as
the lesson's code does it (same corpus, 64-token blocks, student, steps, batch size, learning rate):

* "sequence-level KD (hard labels)": alpha = 0, cross-entropy on the next token of the corpus. The
  corpus was written by the teacher, so this already is sequence-level distillation (Kim & Rush 2016,
  arXiv:1606.07947), with sampled rather than beam-searched teacher text;
* "+ logit KD, T = 1" and "+ logit KD, T = 2": alpha = 0.5, the teacher's top-32 soft targets plus
  one "rest" bucket at that temperature (word-level distillation on top of the sequence-level data).

The seed sets the student's initial weights, the order of the batches and torch's generator. Each
run's held-out perplexities use the course's protocol through `training.perplexity` (context =
stride = the 64-token block). It also records the teacher's mass outside its top 32 at T = 1 and 2,
and the lesson's encoder baseline (the randomly initialised 3-layer MiniLM student, seed 0), which the
lesson loads instead of training a second encoder live.

Run from the repository root (about 10 minutes on an idle 2-core machine), then commit the JSON:

    HF_HUB_OFFLINE=1 .venv/bin/python utils/distill_seeds.py

On a busy machine, run the three set-ups side by side and merge (same results):

    export HF_HUB_OFFLINE=1
    for i in 0 1 2; do for s in 0 1 2; do .venv/bin/python utils/distill_seeds.py --part $i --seed $s --threads 1 & done; done
    .venv/bin/python utils/distill_seeds.py --encoder --threads 1 & wait
    .venv/bin/python utils/distill_seeds.py --merge --threads 1

Writes utils/slmcourse/data/distill_seeds.json (a few kB). Deterministic on a given machine (fixed
seeds, 2 torch threads); another CPU may change the last digits.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from slmcourse import load, scaled_down
from slmcourse import distill, training
from slmcourse.distill import distillation_loss

OUT = Path(__file__).resolve().parent / "slmcourse" / "data" / "distill_seeds.json"

# The lesson's settings (course/08_distillation.ipynb, section 3 and 4): keep them in step.
BLOCK = 64
STUDENT = dict(hidden_size=64, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2)
STEPS, BATCH, LR, WARMUP = 150, 8, 3e-3, 10
TOP_K = 32
SEEDS = (0, 1, 2)
SETUPS = {  # name -> (alpha, temperature of the soft targets)
    "sequence-level KD (hard labels)": (0.0, None),
    "+ logit KD, T = 1": (0.5, 1.0),
    "+ logit KD, T = 2": (0.5, 2.0),
}
E_STEPS, E_BATCH, E_LR = 60, 16, 2e-4


def decoder_runs(report, setups=tuple(SETUPS), seeds=SEEDS) -> dict:
    teacher, tok = load("smollm2-135m", device="cpu")
    teacher.eval()
    train_blocks = training.token_blocks(tok, training.documents(training.read_data("distill_train.txt")), BLOCK)
    heldout_blocks = training.token_blocks(tok, training.documents(training.read_data("distill_heldout.txt")), BLOCK)
    general_blocks = training.token_blocks(tok, training.documents(training.read_data("heldout_general.txt")), BLOCK)
    temperatures = sorted({SETUPS[name][1] for name in setups if SETUPS[name][1] is not None})
    targets = {T: distill.precompute_teacher(teacher, train_blocks, k=TOP_K, temperature=T, batch_size=8, progress=False)
               for T in temperatures}
    tail = {f"T = {T:g}": {"mean": round(targets[T].tail.float().mean().item(), 4),
                           "median": round(targets[T].tail.float().median().item(), 4)} for T in targets}
    del teacher

    runs = []
    for name in setups:
        alpha, T = SETUPS[name]
        for seed in seeds:
            training.seed_everything(seed)
            model = scaled_down("smollm2-135m", seed=seed, **STUDENT)
            schedule = training.batch_schedule(len(train_blocks), BATCH, STEPS, seed=seed)
            hard_losses = []

            def step_loss(step):
                idx = schedule[step]
                blocks = train_blocks[idx]
                logits = model(input_ids=blocks).logits[:, :-1]
                parts = distillation_loss(logits, targets[T][idx] if alpha > 0 else None, labels=blocks[:, 1:],
                                          alpha=alpha, return_parts=True)
                hard_losses.append(parts.hard.item())
                return parts.loss

            start = time.perf_counter()
            training.train(model, step_loss, STEPS, lr=LR, warmup=WARMUP, name=f"{name}, seed {seed}", progress=False)
            run = {"setup": name, "alpha": alpha, "temperature": T, "seed": seed,
                   "heldout_same_kind": round(training.perplexity(model, heldout_blocks), 2),
                   "heldout_general": round(training.perplexity(model, general_blocks), 2),
                   "final_hard_loss": round(sum(hard_losses[-15:]) / 15, 4)}
            if seed == 0:
                run["hard_losses"] = [round(v, 4) for v in hard_losses]
            runs.append(run)
            report(f"{name}, seed {seed}: {run['heldout_same_kind']} / {run['heldout_general']} "
                   f"({time.perf_counter() - start:.0f} s)")
    return {"teacher_tail_outside_top_k": tail, "runs": runs}


def summarise(runs: list[dict]) -> dict:
    summary = {}
    for name in SETUPS:
        values = [r["heldout_same_kind"] for r in runs if r["setup"] == name]
        summary[name] = {"mean": round(statistics.mean(values), 2), "stdev": round(statistics.stdev(values), 2),
                         "min": min(values), "max": max(values)}
    return summary


def encoder_baseline(report) -> dict:
    encoder, etok = load("all-minilm-l6-v2", device="cpu")
    encoder.eval()
    layers = distill.every_other_layer(encoder.config.num_hidden_layers)
    pairs = training.similarity_pairs()
    sentences = []
    for name in ("distill_train.txt", "domain_train.txt"):
        for doc in training.documents(training.read_data(name)):
            sentences += [s.strip() + "." for s in doc.replace("\n", " ").split(". ") if len(s.split()) >= 4]
    sentences = sorted(set(sentences))
    teacher_embeddings = distill.encode(encoder, etok, sentences)
    schedule = training.batch_schedule(len(sentences), E_BATCH, E_STEPS, seed=0)
    # as in the lesson: both students are built (same seed, same order), the random one is trained here
    distill.student_from_teacher(encoder, layers)
    model = distill.student_from_teacher(encoder, layers, copy_weights=False, seed=0)
    before = distill.similarity_score(model, etok, pairs)
    training.seed_everything(0)

    def step_loss(step):
        idx = schedule[step]
        emb = distill.encode(model, etok, [sentences[i] for i in idx], batch_size=E_BATCH, grad=True)
        return distill.embedding_distill_loss(emb, teacher_embeddings[idx])

    history = training.train(model, step_loss, E_STEPS, lr=E_LR, warmup=10, name="random init", progress=False)
    after = distill.similarity_score(model, etok, pairs)
    report(f"encoder, random init: Spearman {before:.3f} -> {after:.3f}")
    return {"steps": E_STEPS, "batch": E_BATCH, "lr": E_LR,
            "spearman_before": round(before, 4), "spearman_after": round(after, 4),
            "losses": [round(v, 5) for v in history.losses]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--part", type=int, choices=range(len(SETUPS)), default=None,
                        help="run only set-up number PART (0, 1, 2) and write a partial file next to --out: several "
                             "parts can run side by side, then --merge")
    parser.add_argument("--seed", type=int, choices=SEEDS, default=None, help="with --part: only this seed")
    parser.add_argument("--encoder", action="store_true", help="run only the encoder baseline (a partial file)")
    parser.add_argument("--merge", action="store_true", help="combine the partial files into --out")
    parser.add_argument("--threads", type=int, default=2,
                        help="torch CPU threads (default 2, the lesson's; 1 is faster on a crowded machine, and may "
                             "change the last digits)")
    args = parser.parse_args()
    training.seed_everything(0, threads=args.threads)   # a fixed thread count: CPU training then repeats exactly
    start = time.perf_counter()
    if args.encoder:
        args.out.with_suffix(".part_encoder").write_text(json.dumps(encoder_baseline(print)), encoding="utf-8")
        return
    if args.part is not None:
        seeds = SEEDS if args.seed is None else (args.seed,)
        part = decoder_runs(print, setups=(list(SETUPS)[args.part],), seeds=seeds)
        name = f".part{args.part}" + ("" if args.seed is None else f"_seed{args.seed}")
        args.out.with_suffix(name).write_text(json.dumps(part), encoding="utf-8")
        print(f"part {name} done in {time.perf_counter() - start:.0f} s")
        return
    if args.merge:
        files = sorted(args.out.parent.glob(args.out.stem + ".part[0-9]*"))
        decoder = {"teacher_tail_outside_top_k": {}, "runs": []}
        for path in files:
            part = json.loads(path.read_text(encoding="utf-8"))
            decoder["teacher_tail_outside_top_k"].update(part["teacher_tail_outside_top_k"])
            decoder["runs"] += part["runs"]
        order = list(SETUPS)
        decoder["teacher_tail_outside_top_k"] = dict(sorted(decoder["teacher_tail_outside_top_k"].items()))
        decoder["runs"].sort(key=lambda r: (order.index(r["setup"]), r["seed"]))
        if len(decoder["runs"]) != len(SETUPS) * len(SEEDS):
            raise SystemExit(f"found {len(decoder['runs'])} runs in {len(files)} partial files, expected {len(SETUPS) * len(SEEDS)}")
        decoder["summary_heldout_same_kind"] = summarise(decoder["runs"])
        encoder_file = args.out.with_suffix(".part_encoder")
        encoder = json.loads(encoder_file.read_text(encoding="utf-8"))
        for path in [*files, encoder_file]:
            path.unlink()
    else:
        decoder = decoder_runs(print)
        decoder["summary_heldout_same_kind"] = summarise(decoder["runs"])
        encoder = encoder_baseline(print)
    result = {
        "made_by": "HF_HUB_OFFLINE=1 .venv/bin/python utils/distill_seeds.py",
        "settings": {"threads": args.threads, "block": BLOCK, "student": STUDENT, "steps": STEPS, "batch": BATCH, "lr": LR, "warmup": WARMUP,
                     "top_k": TOP_K, "seeds": list(SEEDS),
                     "perplexity": "training.perplexity: the course protocol with context = stride = 64 tokens"},
    }
    result["decoder"] = decoder
    result["encoder_random_init"] = encoder
    args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out} in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
