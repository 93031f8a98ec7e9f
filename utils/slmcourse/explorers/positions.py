"""Lesson 6's position explorer: heads, sequence length -> ALiBi biases and RoPE rotations as pictures.

`position_summary` is the logic (plain, tested); `plot_positions` draws it; `position_explorer` wires it.
"""
from __future__ import annotations

from dataclasses import dataclass

import ipywidgets as widgets
import torch

from ..attention import alibi_bias, alibi_slopes, causal_mask, rope_frequencies
from ..errors import CourseError
from ._common import explorer, style_wide, tooltip, refuses_bad_arguments

MAX_HEADS, MAX_SEQ = 64, 512


@dataclass(frozen=True)
class PositionSummary:
    heads: int
    seq_len: int
    head: int  # the head whose ALiBi bias is drawn (0-based)
    head_dim: int
    base: float
    slopes: torch.Tensor  # (heads,)
    bias: torch.Tensor  # (seq, seq) ALiBi bias of `head`, causal part (masked entries are nan)
    angles: torch.Tensor  # (seq, head_dim / 2) RoPE angle of each pair at each position, radians

    def text(self) -> str:
        s = self.slopes
        return (f"ALiBi: {self.heads} heads, slopes from {s[0]:.4g} (head 0) down to {s[-1]:.4g} (head "
                f"{self.heads - 1}); head {self.head} penalises a key {self.seq_len - 1} tokens back by "
                f"{float(s[self.head]) * (self.seq_len - 1):.3g}. RoPE (head dim {self.head_dim}, base {self.base:g}): "
                f"the fastest pair turns 1 radian per token, the slowest one "
                f"{float(rope_frequencies(self.head_dim, self.base)[-1]):.3g} radians per token")


def position_summary(heads: int = 8, seq_len: int = 32, head: int = 0, head_dim: int = 64,
                     base: float = 10000.0) -> PositionSummary:
    """ALiBi slopes and one head's bias, and RoPE angles, for drawing."""
    for what, value in (("heads", heads), ("sequence length", seq_len), ("head dim", head_dim)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise CourseError(f"{what} must be a whole number of at least 1, got {value!r}")
    if heads > MAX_HEADS or seq_len > MAX_SEQ:
        raise CourseError(f"too big to draw: use at most {MAX_HEADS} heads and {MAX_SEQ} tokens")
    if not isinstance(head, int) or not 0 <= head < heads:
        raise CourseError(f"head must be between 0 and {heads - 1} (there are {heads} heads), got {head!r}")
    bias = alibi_bias(heads, seq_len)[head].masked_fill(~causal_mask(seq_len), float("nan"))
    angles = torch.arange(seq_len, dtype=torch.float32)[:, None] * rope_frequencies(head_dim, base)[None]
    return PositionSummary(heads, seq_len, head, head_dim, base, alibi_slopes(heads), bias, angles)


def plot_positions(summary: PositionSummary):
    """Three panels: ALiBi slopes per head, one head's bias matrix, RoPE's cos(angle) per pair and position."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    axes[0].bar(range(summary.heads), summary.slopes.numpy(), color="#4c72b0")
    axes[0].bar([summary.head], [float(summary.slopes[summary.head])], color="#dd8452")
    axes[0].set_yscale("log", base=2)
    axes[0].set_xlabel("head")
    axes[0].set_ylabel("slope m (log scale)")
    axes[0].set_title("ALiBi slopes: a geometric sequence", fontsize=10)
    im = axes[1].imshow(summary.bias.numpy(), cmap="magma", interpolation="nearest")
    fig.colorbar(im, ax=axes[1], fraction=0.046)
    axes[1].set_title(f"ALiBi bias of head {summary.head}: -m (i - j)", fontsize=10)
    axes[1].set_xlabel("key position j")
    axes[1].set_ylabel("query position i")
    im = axes[2].imshow(summary.angles.cos().numpy().T, cmap="coolwarm", aspect="auto", interpolation="nearest",
                        vmin=-1, vmax=1)
    fig.colorbar(im, ax=axes[2], fraction=0.046)
    axes[2].set_title("RoPE: cos(position x theta_k)", fontsize=10)
    axes[2].set_xlabel("position")
    axes[2].set_ylabel("dimension pair k (fast -> slow)")
    fig.tight_layout()
    return fig


@refuses_bad_arguments
def position_explorer(heads: int = 8, seq_len: int = 32, head: int = 0, head_dim: int = 64) -> widgets.VBox:
    """Build the explorer. The returned VBox has `.controls`, `.result` (HTML) and `.figure` (Image)."""
    controls = {
        "heads": widgets.IntSlider(value=heads, min=1, max=MAX_HEADS, description="Heads", continuous_update=False,
                                   style=style_wide()),
        "seq_len": widgets.IntSlider(value=seq_len, min=1, max=256, description="Sequence length",
                                     continuous_update=False, style=style_wide()),
        "head": widgets.IntSlider(value=head, min=0, max=MAX_HEADS - 1, description="Head to draw",
                                  continuous_update=False, style=style_wide()),
        "head_dim": widgets.IntSlider(value=head_dim, min=2, max=256, step=2, description="Head dim (RoPE)",
                                      continuous_update=False, style=style_wide()),
    }
    tooltip(controls["heads"], "ALiBi's slopes depend only on how many heads there are")
    tooltip(controls["head"], "Which head's bias matrix to draw (0 = the steepest slope)")

    def render(**values):
        summary = position_summary(**values)
        return f'<div style="font-size:14px">{summary.text()}</div>', plot_positions(summary)

    return explorer(controls, render, width="900px")
