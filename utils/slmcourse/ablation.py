"""Lesson 11's fine-tuning ablation, precomputed by `utils/finetune_ablation.py` and shipped as
`data/finetune_ablation.json`: rank x target modules x steps of LoRA-SFT on SmolLM2-135M-Instruct, each run
scored on the held-out questions (with per-item results, for intervals), the held-out answer perplexity and the
general-text perplexity (forgetting); plus QLoRA in miniature (the same run on a 4-bit and on a bf16 base).

`load` checks the file's SHA-256, so a changed file is noticed instead of silently plotted.
"""
from __future__ import annotations

from .errors import CourseError

FILE = "finetune_ablation.json"
SHA256 = "53ced48434d1fcec540ac96e8c32f0c03af8fad8dc44d847516717745dc15242"


def load() -> dict:
    """The shipped results, after checking their SHA-256 against the one recorded here."""
    from .bundled import shipped_json

    return shipped_json(FILE, SHA256, "utils/finetune_ablation.py", "slmcourse/ablation.py")


def _interval(correct) -> tuple[float, float]:
    from .evaluate import bootstrap_ci

    return bootstrap_ci(correct)


def _results(results) -> dict:
    """Issue 20: the results must be what load() returns, not a KeyError from deep inside."""
    from .checks import record

    return record("results", results, ("before", "runs", "recipe"), what="the ablation results (from ablation.load())")


def rows(results: dict) -> list[dict]:
    """One dict per ablation run: rank, targets, steps, trainable, accuracy (interval), gain, forgetting; in grid
    order (targets as the recipe lists them, then rank, then steps)."""
    before = _results(results)["before"]["fp32"]
    order = list(results["recipe"].get("targets", ())) if isinstance(results["recipe"], dict) else []
    out = []
    for run in sorted(results["runs"], key=lambda r: (order.index(r["targets"]) if r["targets"] in order else len(order),
                                                      r["rank"], r["steps"])):
        low, high = _interval(run["mc_correct"])
        out.append({"rank": run["rank"], "targets": run["targets"], "steps": run["steps"],
                    "trainable": run["trainable"], "accuracy": run["accuracy"], "low": low, "high": high,
                    "gain": run["accuracy"] - before["accuracy"],
                    "answer_ppl": run["answer_ppl"],
                    "forgetting": 100 * (run["general_ppl"] / before["general_ppl"] - 1)})
    return out


def find(results: dict, rank: int, targets: str, steps: int) -> dict:
    """The ablation row for one setting (CourseError, listing the grid, if it was not run)."""
    for row in rows(results):
        if (row["rank"], row["targets"], row["steps"]) == (rank, targets, steps):
            return row
    grid = results["recipe"]
    raise CourseError(f"no run with rank {rank!r}, targets {targets!r}, steps {steps!r}; the grid is ranks "
                      f"{grid['ranks']}, targets {list(grid['targets'])}, steps {grid['steps']}")


def table(results: dict):
    """The ablation as a DataFrame: accuracy with its 95 % interval, gain, answer perplexity, forgetting."""
    import pandas as pd

    before = _results(results)["before"]["fp32"]
    shown = [{"rank": r["rank"], "targets": r["targets"], "steps": r["steps"], "trainable": f"{r['trainable']:,}",
              "accuracy": f"{r['accuracy']:.0%} [{r['low']:.0%}, {r['high']:.0%}]",
              "gain (points)": round(100 * r["gain"]), "answer ppl": round(r["answer_ppl"], 2),
              "forgetting (%)": round(r["forgetting"], 1)} for r in rows(results)]
    shown.insert(0, {"rank": "-", "targets": "untrained", "steps": 0, "trainable": "0",
                     "accuracy": "{:.0%} [{:.0%}, {:.0%}]".format(before["accuracy"], *_interval(before["mc_correct"])),
                     "gain (points)": 0, "answer ppl": round(before["answer_ppl"], 2), "forgetting (%)": 0.0})
    return pd.DataFrame(shown).set_index(["targets", "rank", "steps"])


def qlora_table(results: dict):
    """QLoRA in miniature: bf16 vs 4-bit base, before and after the same LoRA run."""
    import pandas as pd

    shown = []
    for run in _results(results).get("qlora", []):
        base = results["before"].get(run["base"])
        low, high = _interval(run["mc_correct"])
        untrained = (lambda key, fmt: format(base[key], fmt)) if base else (lambda key, fmt: "not run")
        shown.append({"frozen base": run["base"],
                      "Linear weights (MiB)": round(run["linear_weight_bytes"] / 2 ** 20, 1),
                      "accuracy, untrained": untrained("accuracy", ".0%"),
                      "accuracy after LoRA": f"{run['accuracy']:.0%} [{low:.0%}, {high:.0%}]",
                      "answer ppl, untrained -> LoRA": f"{untrained('answer_ppl', '.2f')} -> {run['answer_ppl']:.2f}",
                      "general ppl, untrained -> LoRA": f"{untrained('general_ppl', '.2f')} -> {run['general_ppl']:.2f}"})
    if not shown:
        return pd.DataFrame({"frozen base": ["(no QLoRA run in the file yet: run utils/finetune_ablation.py)"]})
    return pd.DataFrame(shown).set_index("frozen base")


def plot(results: dict, highlight: tuple[int, str, int] | None = None):
    """In-domain gain (accuracy points) against forgetting (general-text perplexity rise, %), one point per run."""
    import matplotlib.pyplot as plt

    _results(results)
    fig, ax = plt.subplots(figsize=(7, 4))
    colours = {name: c for name, c in zip(results["recipe"]["targets"], ["#4c72b0", "#c44e52", "#55a868"])}
    for r in rows(results):
        size = 40 + 6 * r["rank"]
        marker = "o" if r["steps"] == max(results["recipe"]["steps"]) else "s"
        ax.scatter(r["forgetting"], 100 * r["gain"], s=size, color=colours[r["targets"]], marker=marker, alpha=0.8,
                   edgecolor="black" if highlight == (r["rank"], r["targets"], r["steps"]) else "none", linewidth=2)
        ax.annotate(f"r={r['rank']}, {r['steps']} st.", (r["forgetting"], 100 * r["gain"]), fontsize=7,
                    xytext=(4, 4), textcoords="offset points")
    for name, c in colours.items():
        ax.scatter([], [], color=c, label=name)
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xlabel("forgetting: general-text perplexity rise (%)")
    ax.set_ylabel("in-domain gain (accuracy points)")
    ax.set_title("LoRA-SFT ablation: circles = most steps, squares = fewer; size = rank")
    ax.legend(title="targets", fontsize=8)
    fig.tight_layout()
    return fig


from .checks import guard_public as _guard_public  # noqa: E402 - issue 20: typed arguments checked on entry

_guard_public(globals())
