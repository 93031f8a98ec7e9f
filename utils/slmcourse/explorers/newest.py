"""Lesson 7's architecture explorer: choose a model's features -> parameters, active parameters, and the
memory it keeps while generating (KV cache growing with the context, recurrent state that does not).

`design_summary` is the logic (plain, tested); `plot_design` draws it; `newest_explorer` wires it.
The counts are those of a Llama-style decoder (SwiGLU MLPs, tied embeddings, no biases) whose attention
layers may use multi-head latent attention and whose other layers may be gated-DeltaNet-style linear
layers (q, k, v, o projections of hidden x hidden, one head_dim x head_dim state per head).
"""
from __future__ import annotations

from dataclasses import dataclass

import ipywidgets as widgets

from ..errors import CourseError
from ..newest import kv_bytes_per_token, mla_bytes_per_token
from ._common import explorer, refuses_bad_arguments, style_wide, tooltip

CONTEXTS = (1024, 4096, 16384, 65536, 131072)


@dataclass(frozen=True)
class DesignSummary:
    params: int
    active_params: int
    attention_layers: int
    linear_layers: int
    kv_bytes_per_token: float   # grows with every token of context
    state_bytes: float          # fixed, whatever the context

    def cache_bytes(self, context: int) -> float:
        return self.kv_bytes_per_token * context + self.state_bytes

    def text(self) -> str:
        rows = ", ".join(f"{c // 1024}K: {self.cache_bytes(c) / 2**20:,.0f} MiB" for c in CONTEXTS)
        return (f"{self.params / 1e9:.2f}B parameters, {self.active_params / 1e9:.2f}B active per token; "
                f"{self.attention_layers} attention + {self.linear_layers} linear layers; "
                f"cache {self.kv_bytes_per_token / 1024:.1f} KiB per token + {self.state_bytes / 2**20:.1f} MiB fixed "
                f"state (batch 1, 16-bit) - {rows}")


def design_summary(hidden: int = 2048, layers: int = 24, vocab: int = 65536, heads: int = 16, kv_heads: int = 4,
                   ffn: int = 6144, experts: int = 1, top_k: int = 1, latent_rank: int = 0,
                   linear_share: float = 0.0, bytes_per_element: float = 2.0) -> DesignSummary:
    """Parameters, active parameters and cache of a decoder with the chosen features.

    experts > 1 makes every MLP a mixture of `experts` SwiGLU experts of width `ffn` with `top_k` active;
    latent_rank > 0 replaces GQA with MLA (latent of that rank plus a shared RoPE key of head_dim / 2);
    linear_share is the fraction of layers that are linear-attention (fixed-state) layers.
    """
    for what, value in (("hidden", hidden), ("layers", layers), ("vocab", vocab), ("heads", heads),
                        ("kv_heads", kv_heads), ("ffn", ffn), ("experts", experts), ("top_k", top_k)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise CourseError(f"{what} must be a whole number of at least 1, got {value!r}")
    if hidden % heads:
        raise CourseError(f"hidden size {hidden} is not divisible by {heads} heads")
    if heads % kv_heads:
        raise CourseError(f"{heads} query heads cannot be shared evenly among {kv_heads} KV heads")
    if top_k > experts:
        raise CourseError(f"top_k={top_k} is more than the {experts} experts")
    if not 0.0 <= linear_share <= 1.0:
        raise CourseError(f"linear_share must be between 0 and 1, got {linear_share!r}")
    if isinstance(latent_rank, bool) or not isinstance(latent_rank, int) or latent_rank < 0:
        raise CourseError(f"latent_rank must be 0 (no MLA) or a positive whole number, got {latent_rank!r}")
    hd = hidden // heads
    rope = hd // 2
    linear = round(linear_share * layers)
    attn = layers - linear
    if latent_rank:
        attn_params = hidden * heads * hd + hidden * (latent_rank + rope) + latent_rank * heads * 2 * hd + heads * hd * hidden
        per_token = mla_bytes_per_token(attn, latent_rank, rope, bytes_per_element)
    else:
        attn_params = hidden * hd * (heads + 2 * kv_heads) + heads * hd * hidden
        per_token = kv_bytes_per_token(attn, kv_heads, hd, bytes_per_element)
    linear_params = 4 * hidden * hidden
    expert = 3 * hidden * ffn
    router = hidden * experts if experts > 1 else 0
    norms = 2 * hidden
    base = vocab * hidden + hidden + attn * attn_params + linear * linear_params + layers * (router + norms)
    params = base + layers * experts * expert
    active = base + layers * top_k * expert
    state = linear * heads * hd * hd * bytes_per_element
    return DesignSummary(int(params), int(active), attn, linear, float(per_token), float(state))


def plot_design(summary: DesignSummary, reference: DesignSummary | None = None):
    """Cache bytes against the context (log axes): the KV part grows, the recurrent state stays flat."""
    import matplotlib.pyplot as plt

    xs = [2 ** i for i in range(8, 18)]
    fig, ax = plt.subplots(figsize=(6.5, 3.4))
    ax.plot(xs, [summary.cache_bytes(x) / 2**20 for x in xs], marker="o", label="this design")
    if reference is not None:
        ax.plot(xs, [reference.cache_bytes(x) / 2**20 for x in xs], ls="--", color="grey",
                label="same size, all GQA attention")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("context (tokens)")
    ax.set_ylabel("cache + state (MiB, batch 1)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


@refuses_bad_arguments
def newest_explorer(**defaults) -> widgets.VBox:
    """Build the explorer. The returned VBox has `.controls`, `.result` (HTML) and `.figure` (Image)."""
    known = ("hidden", "layers", "heads", "kv_heads", "ffn", "experts", "top_k", "latent_rank", "linear_share")
    from .. import checks

    for key in defaults:
        checks.one_of("setting", key, known, label="newest_explorer setting")
    d = {"hidden": 2048, "layers": 24, "heads": 16, "kv_heads": 4, "ffn": 6144, "experts": 1, "top_k": 1,
         "latent_rank": 0, "linear_share": 0.0, **defaults}

    def slider(name, label, lo, hi, step=1):
        return widgets.IntSlider(value=d[name], min=lo, max=hi, step=step, description=label,
                                 continuous_update=False, style=style_wide())

    controls = {
        "hidden": slider("hidden", "Hidden size", 256, 8192, 256),
        "layers": slider("layers", "Layers", 2, 80),
        "heads": slider("heads", "Query heads", 1, 64),
        "kv_heads": slider("kv_heads", "KV heads", 1, 64),
        "ffn": slider("ffn", "MLP / expert width", 256, 32768, 256),
        "experts": slider("experts", "Experts", 1, 256),
        "top_k": slider("top_k", "Active experts (top-k)", 1, 16),
        "latent_rank": slider("latent_rank", "MLA latent rank (0 = GQA)", 0, 2048, 64),
        "linear_share": widgets.FloatSlider(value=d["linear_share"], min=0.0, max=1.0, step=0.05,
                                            description="Share of linear layers", continuous_update=False,
                                            style=style_wide()),
    }
    tooltip(controls["experts"], "1 = a dense MLP; more = a mixture of experts, each as wide as the MLP width")
    tooltip(controls["linear_share"], "Fraction of layers with a fixed recurrent state instead of a KV cache")

    def render(**values):
        summary = design_summary(**values)
        plain = design_summary(**{**values, "latent_rank": 0, "linear_share": 0.0})
        return f'<div style="font-size:14px">{summary.text()}</div>', plot_design(summary, plain)

    return explorer(controls, render, width="700px")
