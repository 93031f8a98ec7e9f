"""Lesson 8's temperature explorer: a real next-token distribution, a temperature slider -> the soft
targets a student would learn from.

The logic is `explore_temperature` (a plain function over one logit vector); the widget only wires
controls to it. Nonsense input (a temperature <= 0, no tokens to show) gets a message, not a traceback.
"""
from __future__ import annotations

import html

import ipywidgets as widgets
import matplotlib.pyplot as plt
import torch

from ..distill import entropy_bits, soft_targets
from ..errors import CourseError
from ._common import explorer, refuses_bad_arguments, style_wide, tooltip


@torch.no_grad()
def next_token_logits(model, tokenizer, prompt: str) -> torch.Tensor:
    """The model's logits for the token that follows `prompt` (a REAL forward pass), shape (vocab,)."""
    if not isinstance(prompt, str) or not prompt.strip():
        raise CourseError("type a prompt: the model predicts the token that follows it")
    device = next(model.parameters()).device
    ids = tokenizer(prompt, return_tensors="pt").input_ids.to(device)
    return model(input_ids=ids).logits[0, -1].float().cpu()


def explore_temperature(logits: torch.Tensor, tokenizer, temperature: float = 2.0, top_k: int = 10) -> dict:
    """Soft targets at `temperature` and at T = 1 for the `top_k` most likely tokens, plus entropies."""
    if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= min(50, logits.shape[-1]):
        raise CourseError(f"show between 1 and {min(50, logits.shape[-1])} tokens, got {top_k!r}")
    probs = soft_targets(logits, temperature)
    base = soft_targets(logits, 1.0)
    order = base.argsort(descending=True)[:top_k]
    return {
        "temperature": float(temperature), "top_k": top_k,
        "tokens": [tokenizer.decode([int(i)]) for i in order],
        "probs": probs[order].tolist(), "probs_t1": base[order].tolist(),
        "top_prob": float(probs.max()), "shown_mass": float(probs[order].sum()),
        "entropy_bits": float(entropy_bits(probs)), "entropy_bits_t1": float(entropy_bits(base)),
    }


def plot_temperature(result: dict):
    fig, ax = plt.subplots(figsize=(8, 3.2))
    k = len(result["tokens"])
    x = torch.arange(k).numpy()
    ax.bar(x - 0.2, result["probs_t1"], width=0.4, color="#bbbbbb", label="T = 1 (the model's own)")
    ax.bar(x + 0.2, result["probs"], width=0.4, color="#4c72b0", label=f"T = {result['temperature']:.2f} (soft targets)")
    ax.set_xticks(x)
    ax.set_xticklabels([repr(t) for t in result["tokens"]], rotation=45, ha="right", fontsize=9)
    ax.set_ylabel("probability")
    ax.set_title("next-token distribution, the most likely tokens")
    ax.legend()
    fig.tight_layout()
    return fig


def describe(result: dict) -> str:
    return (f'<div style="font-size:14px">T = <b>{result["temperature"]:.2f}</b>: the most likely token gets '
            f'{100 * result["top_prob"]:.1f} %, the {result["top_k"]} tokens shown hold '
            f'{100 * result["shown_mass"]:.1f} % of the probability. Entropy {result["entropy_bits"]:.2f} bits '
            f'(≈ {2 ** result["entropy_bits"]:.1f} equally likely choices) against '
            f'{result["entropy_bits_t1"]:.2f} bits at T = 1. Top tokens: '
            f'{html.escape(", ".join(repr(t) for t in result["tokens"][:5]))}</div>')


@refuses_bad_arguments
def temperature_explorer(model=None, tokenizer=None, prompt: str = "The capital of France is",
                         temperature: float = 2.0, top_k: int = 10, logits: torch.Tensor | None = None) -> widgets.VBox:
    """The explorer. With a model, the prompt box re-runs it; with `logits` only, the prompt is fixed.

    The VBox has `.controls`, `.result` (HTML) and `.figure` (Image) for headless tests.
    """
    if tokenizer is None or (model is None and logits is None):
        raise CourseError("give the explorer a tokenizer and either a model or a logit vector")
    from .. import checks

    if not isinstance(prompt, str):
        raise CourseError(f"prompt must be a string, got {type(prompt).__name__}")
    checks.fraction("temperature", temperature, 0.1, 8.0)
    checks.whole_number("top_k", top_k, minimum=1, maximum=50)
    if logits is not None:
        logits = checks.finite_tensor("logits", logits, ndim=1, dtype="float")
    elif model is not None:
        model = checks.module("model", model)
    state = {"prompt": prompt,
             "logits": logits if logits is not None else next_token_logits(model, tokenizer, prompt)}
    controls = {
        "prompt": widgets.Text(value=prompt, description="Prompt", continuous_update=False, disabled=model is None,
                               style=style_wide(), layout=widgets.Layout(width="520px")),
        "temperature": widgets.FloatSlider(value=temperature, min=0.1, max=8.0, step=0.05, description="Temperature T",
                                           continuous_update=False, style=style_wide()),
        "top_k": widgets.IntText(value=top_k, description="Tokens shown", style=style_wide()),
    }
    tooltip(controls["temperature"], "softmax(logits / T): T > 1 spreads probability to the 'dark knowledge' tokens")
    def render(prompt, temperature, top_k):
        if prompt != state["prompt"]:              # a new prompt: run the model once more
            state["logits"], state["prompt"] = next_token_logits(model, tokenizer, prompt), prompt
        outcome = explore_temperature(state["logits"], tokenizer, temperature, top_k)
        return describe(outcome), plot_temperature(outcome)

    return explorer(controls, render, width="720px")
