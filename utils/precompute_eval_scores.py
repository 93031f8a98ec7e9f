"""Precompute lesson 10's full test-split scores (too slow for the notebook's budget) into
utils/slmcourse/data/eval/scores.json.

    HF_HUB_OFFLINE=1 nice -n 10 .venv/bin/python utils/precompute_eval_scores.py [--only smollm2-135m,...]

Every run scores the 200 test items of one task with slmcourse.evaluate.evaluate (log-likelihood multiple
choice for facts and sentiment, greedy generation + exact match for arithmetic) and stores each item's
verdict, so the lesson can compute intervals and paired tests. Also the models' bits per byte on the
course's held-out text (data/distill_heldout.txt, the perplexity protocol of slmcourse.perplexity).
Runs already in the file are kept (the script can be resumed); --replace drops the --only models' runs first.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from slmcourse import evaluate as ev, ladder  # noqa: E402
from slmcourse.training import read_data  # noqa: E402

STUDENT = "distilled-student"  # lesson 8's student (seq.-level + logit KD, T = 2, seed 0), shipped in data/draft/
PLAN = {
    "smollm2-135m": [(0, False), (0, True), (3, False), (3, True)],
    "gemma-3-270m": [(0, False), (3, False)],
    STUDENT: [(0, False)],
    **{name: [(0, False)] for name in ladder.SIZES},
}
ORDER = list(ladder.SIZES) + [STUDENT, "smollm2-135m", "gemma-3-270m"]


def distilled_student():
    """Lesson 8's decoder student (seq.-level + logit KD, T = 2, seed 0): the copy the course ships in
    data/draft/ (trained with lesson 8's recipe, slmcourse.speculative.DRAFT_RECIPE; SHA-256 checked against
    data/draft/SHA256SUMS), with SmolLM2's tokenizer (the student shares its teacher's vocabulary)."""
    from safetensors.torch import load_file
    from transformers import AutoTokenizer

    from slmcourse import bundled, catalogue, scaled_down, speculative

    weights = speculative.shipped_draft()
    if weights is None:
        raise SystemExit("data/draft/ holds no draft student trained with today's DRAFT_RECIPE: "
                         "run `python -m slmcourse.speculative --retrain` and ship it first")
    student = scaled_down("smollm2-135m", seed=0, **speculative.DRAFT_CONFIG)
    student.load_state_dict(load_file(str(weights)), strict=False)
    student.tie_weights()
    tok = AutoTokenizer.from_pretrained(bundled.prepare(catalogue.find("smollm2-135m").key, progress=False))
    return student.eval(), tok


def load_model(name):
    if name in ladder.SIZES:
        return ladder.load_ladder(name)
    if name == STUDENT:
        return distilled_student()
    from slmcourse import load
    return load(name)


def merge(parts, out: Path) -> None:
    scores = json.loads(out.read_text()) if out.is_file() else {"runs": [], "bits_per_byte": {}}
    done = {(r["model"], r["task"], r["shots"], r["chat"]) for r in scores["runs"]}
    for part in parts:
        more = json.loads(Path(part).read_text())
        scores["runs"] += [r for r in more["runs"] if (r["model"], r["task"], r["shots"], r["chat"]) not in done]
        done |= {(r["model"], r["task"], r["shots"], r["chat"]) for r in more["runs"]}
        scores["bits_per_byte"].update(more["bits_per_byte"])
        scores["command"], scores["environment"] = more["command"], more["environment"]
    order = {m: i for i, m in enumerate(ORDER)}
    scores["runs"].sort(key=lambda r: (order.get(r["model"], 99), list(ev.TASKS).index(r["task"]), r["shots"], r["chat"]))
    out.write_text(json.dumps(scores, indent=0) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", default=",".join(ORDER))
    parser.add_argument("--tasks", default=",".join(ev.TASKS))
    parser.add_argument("--out", default=str(ev.SCORES_FILE), help="write here (merge with --merge later)")
    parser.add_argument("--bpb", action="store_true", help="also measure bits per byte on held-out text")
    parser.add_argument("--limit", type=int, default=None, help="only the first N test items (a timing estimate)")
    parser.add_argument("--shots", default=None, help="only these settings, e.g. 3 or 0,3 (default: the PLAN's)")
    parser.add_argument("--merge", nargs="*", default=None, help="merge these partial files into scores.json")
    parser.add_argument("--replace", action="store_true",
                        help="drop the --only models' runs from the file first (after retraining the ladder)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    if args.merge is not None:
        return merge(args.merge, out)
    scores = json.loads(out.read_text()) if out.is_file() else {"runs": [], "bits_per_byte": {}}
    if args.replace:
        scores["runs"] = [r for r in scores["runs"] if r["model"] not in args.only.split(",")]
    scores["command"] = "HF_HUB_OFFLINE=1 .venv/bin/python utils/precompute_eval_scores.py"
    scores["environment"] = f"torch {torch.__version__}, {platform.machine()} CPU"
    done = {(r["model"], r["task"], r["shots"], r["chat"]) for r in scores["runs"]}
    heldout = [p for p in read_data("distill_heldout.txt").split("\n") if p.strip()]
    for name in args.only.split(","):
        model, tok = load_model(name)
        if args.bpb and name not in scores["bits_per_byte"]:
            scores["bits_per_byte"][name] = round(ev.bits_per_byte(model, tok, heldout), 4)
        for shots, chat in PLAN[name]:
            if args.shots is not None and str(shots) not in args.shots.split(","):
                continue
            for task in args.tasks.split(","):
                if (name, task, shots, chat) in done:
                    continue
                t0 = time.time()
                items = ev.load_items(task, "test", limit=args.limit)
                r = ev.evaluate(model, tok, task, items, shots=shots, chat=chat, model_name=name, max_new_tokens=8)
                scores["runs"].append({
                    "model": name, "task": task, "shots": shots, "chat": chat, "ids": r.ids,
                    "correct": "".join("1" if c else "0" for c in r.correct),
                    "correct_norm": "".join("1" if c else "0" for c in r.correct_norm),
                    "outputs": [o.strip()[:40] for o in r.outputs]})
                print(f"{r.text()}  ({time.time() - t0:.0f} s)", flush=True)
                out.write_text(json.dumps(scores, indent=0) + "\n")
        out.write_text(json.dumps(scores, indent=0) + "\n")
        del model


if __name__ == "__main__":
    main()
