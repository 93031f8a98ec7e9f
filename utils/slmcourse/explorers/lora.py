"""Lesson 11's LoRA explorer: rank + target modules -> trainable parameters and fine-tuning memory,
for any catalogued model (counted on its full-size architecture on `meta`, no weights).

The logic is `slmcourse.lora.lora_budget`; the widget only wires controls to it. Nonsense input (no
target chosen, a rank larger than a layer) gets a message, not a traceback.
"""
from __future__ import annotations

import ipywidgets as widgets
import matplotlib.pyplot as plt

from ..catalogue import get, names
from ..lora import LoRABudget, lora_budget, target_choices
from ._common import explorer, refuses_bad_arguments, style_wide, tooltip

GiB = 1024 ** 3
RANKS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]


def _fmt_bytes(n: int) -> str:
    return f"{n / GiB:.2f} GiB" if n >= 0.1 * GiB else f"{n / 1024 ** 2:.1f} MiB"


def describe(b: LoRABudget) -> str:
    return (f'<div style="font-size:14px"><b>{b.model}</b>, rank {b.rank} on {", ".join(b.targets)} '
            f'({b.adapted_layers} layers): <b>{b.lora_params:,}</b> trainable parameters, '
            f'{b.percent:.3f} % of {b.total_params:,}. Adapter file: {_fmt_bytes(b.adapter_file_bytes)} (fp32).<br>'
            f'Weights + gradients + AdamW states: full fine-tuning <b>{_fmt_bytes(b.full_ft_bytes)}</b>, '
            f'LoRA <b>{_fmt_bytes(b.lora_bytes)}</b> (fp32 base), {_fmt_bytes(b.lora_bf16_base_bytes)} '
            f'with the frozen base in bf16 - activations not counted.</div>')


def plot_budget(b: LoRABudget):
    fig, ax = plt.subplots(figsize=(7, 2.6))
    labels = ["full fine-tuning (fp32)", "LoRA, fp32 base", "LoRA, bf16 base"]
    values = [b.full_ft_bytes / GiB, b.lora_bytes / GiB, b.lora_bf16_base_bytes / GiB]
    bars = ax.barh(labels, values, color=["#c44e52", "#4c72b0", "#55a868"])
    ax.bar_label(bars, labels=[f"{v:.2f} GiB" for v in values], padding=3)
    ax.set_xlabel("GiB (weights, gradients, optimizer states)")
    ax.set_xlim(0, max(values) * 1.3)
    ax.invert_yaxis()
    ax.set_title(f"{b.model}: fine-tuning memory before activations")
    fig.tight_layout()
    return fig


@refuses_bad_arguments
def lora_explorer(model: str = "smollm2-135m", rank: int = 8, targets=("q_proj", "v_proj")) -> widgets.VBox:
    """The explorer. The VBox has `.controls`, `.result` (HTML) and `.figure` (Image) for headless tests."""
    from .. import checks

    card = get(model)
    options = target_choices(card.key)
    rank = checks.one_of("rank", rank, RANKS)
    targets = [checks.one_of("targets", t, options, label="target module")
               for t in checks.string_list("targets", targets)]  # never dropped silently, never split letter by letter
    controls = {
        "model": widgets.Dropdown(options=[(get(n).name, n) for n in names()], value=card.key, description="Model",
                                  style=style_wide()),
        "rank": widgets.Dropdown(options=RANKS, value=rank, description="Rank r", style=style_wide()),
        "targets": widgets.SelectMultiple(options=options, value=tuple(t for t in targets if t in options),
                                          description="Target modules", rows=8, style=style_wide()),
    }
    tooltip(controls["targets"], "The Linear layers that get an adapter (ctrl/cmd-click to choose several)")
    tooltip(controls["rank"], "r: the adapter's inner size; trainable numbers per layer = r x (in + out)")
    def switch_model(change) -> None:
        # registered before the explorer's own observer, so the targets fit the new model first
        new_options = target_choices(change["new"])
        kept = tuple(t for t in controls["targets"].value if t in new_options)
        controls["targets"].value = ()
        controls["targets"].options = new_options
        controls["targets"].value = kept

    def render(model, rank, targets):
        outcome = lora_budget(model, rank, targets)
        return describe(outcome), plot_budget(outcome)

    controls["model"].observe(switch_model, names="value")
    return explorer(controls, render, width="620px")
