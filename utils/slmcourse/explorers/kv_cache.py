"""Lesson 4's KV-cache explorer: layers, heads, KV heads, head dim, context, batch, precision -> memory.

`kv_cache_summary` is the logic (plain, tested); `kv_cache_explorer` only wires controls to it.
"""
from __future__ import annotations

from dataclasses import dataclass

import ipywidgets as widgets

from .. import catalogue
from ..attention import kv_cache_bytes
from ..catalogue import attention_kind
from ..errors import CourseError
from ..memory import MiB, PRECISIONS
from ._common import error_html, image_widget, limit_note, refuses_bad_arguments, show_figure, style_wide, tooltip


@dataclass(frozen=True)
class KVCacheSummary:
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    context: int
    batch: int
    precision: str
    bytes: int
    mha_bytes: int  # the same model if every query head had its own K and V
    mqa_bytes: int  # ... if all query heads shared one K and V

    @property
    def kind(self) -> str:
        return attention_kind(self.heads, self.kv_heads)

    @property
    def saving(self) -> float:
        """How many times smaller than multi-head attention's cache."""
        return self.mha_bytes / self.bytes if self.bytes else 1.0

    def text(self) -> str:
        return (f"{self.kind} ({self.heads} query heads, {self.kv_heads} KV heads): "
                f"{self.bytes / MiB:,.1f} MiB for {self.context:,} tokens x batch {self.batch} at {self.precision} "
                f"({self.bytes // (self.context * self.batch):,} bytes per token); MHA would need "
                f"{self.mha_bytes / MiB:,.1f} MiB ({self.saving:.0f}x more), MQA {self.mqa_bytes / MiB:,.1f} MiB")


def kv_cache_summary(layers: int, heads: int, kv_heads: int, head_dim: int, context: int, batch: int = 1,
                     precision: str = "fp16") -> KVCacheSummary:
    """KV-cache bytes for one configuration, and for the MHA and MQA versions of the same model."""
    for what, value in (("layers", layers), ("heads", heads), ("KV heads", kv_heads), ("head dim", head_dim),
                        ("context", context), ("batch", batch)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise CourseError(f"{what} must be a whole number of at least 1, got {value!r}")
    if kv_heads > heads:
        raise CourseError(f"{kv_heads} KV heads is more than the {heads} query heads: each KV head must serve "
                          "at least one query head")
    attention_kind(heads, kv_heads)  # raises if the heads do not divide
    if precision not in PRECISIONS:
        raise CourseError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    per = PRECISIONS[precision]

    def size(g: int) -> int:
        return kv_cache_bytes(layers, g, head_dim, context, batch, per)

    return KVCacheSummary(layers, heads, kv_heads, head_dim, context, batch, precision,
                          size(kv_heads), size(heads), size(1))


def preset(name: str) -> dict:
    """The explorer's settings for a catalogued model (decoder layers, heads, KV heads, head dim)."""
    card = catalogue.get(name)
    if card.family == "encoder":
        raise CourseError(f"{card.name} is an encoder: it reads its input at once and keeps no KV cache")
    return {"layers": card.decoder_layers, "heads": card.heads, "kv_heads": card.kv_heads, "head_dim": card.head_dim}


def plot_kv_summary(summary: KVCacheSummary, ax=None):
    """Bars: MHA, this model, MQA cache sizes in MiB."""
    import matplotlib.pyplot as plt

    if ax is None:
        _fig, ax = plt.subplots(figsize=(6, 2.2))
    labels = [f"MHA ({summary.heads} KV heads)", f"this model ({summary.kv_heads})", "MQA (1 KV head)"]
    values = [summary.mha_bytes / MiB, summary.bytes / MiB, summary.mqa_bytes / MiB]
    ax.barh(labels, values, color=["#c0392b", "#4c72b0", "#55a868"])
    for y, v in enumerate(values):
        ax.text(v, y, f" {v:,.1f} MiB", va="center", fontsize=8)
    ax.set_xlim(0, max(values) * 1.35)
    ax.invert_yaxis()
    ax.set_xlabel("KV cache (MiB)")
    ax.set_title(f"{summary.context:,} tokens x batch {summary.batch}, {summary.precision}")
    ax.figure.tight_layout()
    return ax.figure


@refuses_bad_arguments
def kv_cache_explorer(model: str = "smollm2-135m", context: int = 8192, batch: int = 1,
                      precision: str = "fp16") -> widgets.VBox:
    """Build the explorer. The returned VBox has `.controls` (name -> widget), `.result` (HTML) and `.figure`."""
    decoders = [k for k in catalogue.names() if catalogue.get(k).family != "encoder"]
    from .. import checks

    if catalogue.get(model).key not in decoders:
        raise CourseError(f"model {model!r} is an encoder: it has no KV cache; choose a decoder such as 'smollm2-135m'")
    checks.whole_number("context", context, minimum=128, maximum=131072)
    checks.whole_number("batch", batch, minimum=1, maximum=64)
    precision = checks.one_of("precision", precision, list(PRECISIONS))
    start = preset(model)
    controls = {
        "preset": widgets.Dropdown(options=[(catalogue.get(k).name, k) for k in decoders] + [("(custom)", "")],
                                   value=catalogue.get(model).key, description="Preset", style=style_wide()),
        "layers": widgets.BoundedIntText(value=start["layers"], min=1, max=200, description="Layers", style=style_wide()),
        "heads": widgets.BoundedIntText(value=start["heads"], min=1, max=256, description="Query heads", style=style_wide()),
        "kv_heads": widgets.BoundedIntText(value=start["kv_heads"], min=1, max=256, description="KV heads",
                                           style=style_wide()),
        "head_dim": widgets.BoundedIntText(value=start["head_dim"], min=1, max=1024, description="Head dim",
                                           style=style_wide()),
        "context": widgets.IntSlider(value=context, min=128, max=131072, step=128, description="Context (tokens)",
                                     continuous_update=False, style=style_wide(), layout=widgets.Layout(width="520px")),
        "batch": widgets.IntSlider(value=batch, min=1, max=64, description="Batch", continuous_update=False,
                                   style=style_wide()),
        "precision": widgets.ToggleButtons(options=list(PRECISIONS), value=precision, description="Precision",
                                           style=style_wide()),
    }
    tooltip(controls["kv_heads"], "Key/value heads: equal to the query heads is MHA, 1 is MQA, in between GQA")
    tooltip(controls["preset"], "Fill in the heads and layers of a catalogued model")
    result = widgets.HTML()
    figure = image_widget(width="560px")
    state = {"applying_preset": False}

    def update(_change=None) -> None:
        if state["applying_preset"]:
            return
        values = {k: c.value for k, c in controls.items() if k != "preset"}
        try:
            summary = kv_cache_summary(**values)
        except CourseError as err:
            result.value = error_html(str(err))
            figure.value = b""
            return
        result.value = f'<div style="font-size:14px">{summary.text()}</div>' + limit_note(controls)
        show_figure(figure, plot_kv_summary(summary))

    def apply_preset(change) -> None:
        if not change["new"]:
            return
        state["applying_preset"] = True
        try:
            for k, v in preset(change["new"]).items():
                controls[k].value = v
        finally:
            state["applying_preset"] = False
        update()

    def mark_custom(_change) -> None:
        if not state["applying_preset"] and controls["preset"].value:
            p = preset(controls["preset"].value)
            if any(controls[k].value != v for k, v in p.items()):
                state["applying_preset"] = True
                controls["preset"].value = ""
                state["applying_preset"] = False

    controls["preset"].observe(apply_preset, names="value")
    for name in ("layers", "heads", "kv_heads", "head_dim"):
        controls[name].observe(mark_custom, names="value")
    for name, control in controls.items():
        if name != "preset":
            control.observe(update, names="value")
    box = widgets.VBox([*controls.values(), result, figure])
    box.controls, box.result, box.figure, box.update = controls, result, figure, update
    update()
    return box
