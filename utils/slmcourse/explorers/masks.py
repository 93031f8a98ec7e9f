"""Lesson 5's mask explorer: sequence length, window, layer depth -> the mask and the receptive field.

`mask_summary` is the logic (plain, tested); `plot_masks` draws it; `mask_explorer` wires controls.
"""
from __future__ import annotations

from dataclasses import dataclass

import ipywidgets as widgets
import torch

from ..attention import attended_pairs, causal_mask, receptive_field, receptive_field_size, sliding_window_mask
from ..errors import CourseError
from ._common import explorer, style_wide, tooltip, refuses_bad_arguments

MAX_SEQ = 256


@dataclass(frozen=True)
class MaskSummary:
    seq_len: int
    window: int
    layers: int
    mask: torch.Tensor  # one layer's sliding-window mask (seq, seq)
    reach: torch.Tensor  # what each position can draw on after `layers` layers (seq, seq)
    pairs: int  # scores one sliding layer computes
    causal_pairs: int  # scores one full causal layer computes
    field: int  # receptive field of the last position after `layers` layers, in tokens

    def text(self) -> str:
        return (f"window {self.window}: one layer computes {self.pairs:,} scores instead of {self.causal_pairs:,} "
                f"({100 * self.pairs / self.causal_pairs:.0f}% of full causal attention); after {self.layers} "
                f"layer{'s' if self.layers > 1 else ''} the last token draws on {self.field:,} tokens "
                f"(layers x (window - 1) + 1 = {receptive_field_size(self.layers, self.window):,}, "
                f"capped by the sequence)")


def mask_summary(seq_len: int, window: int, layers: int = 1) -> MaskSummary:
    """A sliding-window mask and the receptive field it gives after `layers` stacked layers."""
    for what, value in (("sequence length", seq_len), ("window", window), ("layers", layers)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise CourseError(f"{what} must be a whole number of at least 1, got {value!r}")
    if seq_len > MAX_SEQ:
        raise CourseError(f"a {seq_len}-token mask is too big to draw; use at most {MAX_SEQ} tokens")
    if window > seq_len:
        raise CourseError(f"a window of {window} is longer than the {seq_len}-token sequence: every token already "
                          "sees the whole past, so this is plain causal attention - pick a window below the length")
    mask = sliding_window_mask(seq_len, window)
    reach = receptive_field([mask] * layers)
    return MaskSummary(seq_len, window, layers, mask, reach, attended_pairs(seq_len, window),
                       attended_pairs(seq_len), int(reach[-1].sum()))


def plot_masks(summary: MaskSummary):
    """Three panels: full causal mask, one sliding-window layer, reach after `layers` layers."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(10.5, 3.6))
    panels = [(causal_mask(summary.seq_len), "full causal"),
              (summary.mask, f"sliding window {summary.window} (one layer)"),
              (summary.reach, f"reach after {summary.layers} layer{'s' if summary.layers > 1 else ''}")]
    for ax, (m, title) in zip(axes, panels):
        ax.imshow(m.to(torch.float32), cmap="Blues", vmin=0, vmax=1.3, interpolation="nearest")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("key position j (attended to)")
    axes[0].set_ylabel("query position i")
    fig.tight_layout()
    return fig


@refuses_bad_arguments
def mask_explorer(seq_len: int = 32, window: int = 4, layers: int = 1) -> widgets.VBox:
    """Build the explorer. The returned VBox has `.controls`, `.result` (HTML) and `.figure` (Image)."""
    controls = {
        "seq_len": widgets.IntSlider(value=seq_len, min=1, max=128, description="Sequence length",
                                     continuous_update=False, style=style_wide()),
        "window": widgets.IntSlider(value=window, min=1, max=128, description="Window", continuous_update=False,
                                    style=style_wide()),
        "layers": widgets.IntSlider(value=layers, min=1, max=12, description="Layers", continuous_update=False,
                                    style=style_wide()),
    }
    tooltip(controls["window"], "Each token sees itself and the window - 1 tokens before it")
    tooltip(controls["layers"], "Stacked sliding-window layers: information hops one window per layer")

    def render(**values):
        summary = mask_summary(**values)
        return f'<div style="font-size:14px">{summary.text()}</div>', plot_masks(summary)

    return explorer(controls, render, width="820px")
