"""Lesson 1's "will it fit?" explorer: model, weight format, KV-cache precision, context, batch, device -> memory needed.

Weight formats are priced at their real bits per weight (memory.FORMATS); the bare int8/int4 widths are
listed last, labelled as ideal lower bounds."""
from __future__ import annotations

import ipywidgets as widgets

from .. import catalogue
from ..memory import DEVICES, FORMATS, KV_PRECISIONS, fit
from ..plots import plot_fit
from ._common import explorer, style_wide, tooltip, refuses_bad_arguments


def _format_option(name: str) -> tuple[str, str]:
    f = FORMATS[name]
    label = f"{name} ({f.bits_per_weight:g} bits/weight" + (", ideal lower bound)" if f.ideal else ")")
    return label, name


@refuses_bad_arguments
def fit_explorer(model: str = "smollm2-135m", precision: str = "fp16", context: int = 2048, batch: int = 1,
                 device: str = "Laptop (16 GB RAM)", kv_precision: str = "fp16") -> widgets.VBox:
    """Build the explorer. The returned VBox has `.controls` (name -> widget) and `.result` (HTML)."""
    controls = {
        "model": widgets.Dropdown(options=[(catalogue.get(k).name, k) for k in catalogue.names()],
                                  value=catalogue.get(model).key, description="Model", style=style_wide()),
        "precision": widgets.Dropdown(options=[_format_option(n) for n in FORMATS], value=precision,
                                      description="Weights", style=style_wide(), layout=widgets.Layout(width="420px")),
        "kv_precision": widgets.Dropdown(options=list(KV_PRECISIONS), value=kv_precision, description="KV cache",
                                         style=style_wide()),
        "context": widgets.IntSlider(value=context, min=128, max=131072, step=128, description="Context (tokens)",
                                     continuous_update=False, style=style_wide(),
                                     layout=widgets.Layout(width="520px")),
        "batch": widgets.IntSlider(value=batch, min=1, max=64, description="Batch", continuous_update=False,
                                   style=style_wide()),
        "device": widgets.Dropdown(options=list(DEVICES), value=device, description="Device", style=style_wide()),
    }
    tooltip(controls["context"], "Tokens held at once: prompt + generated text")
    tooltip(controls["precision"], "Weight format at its real bits per weight (scales included): fp32 32, bf16/fp16 16, "
                                   "Q8_0 8.5, Q4_K_M 5.43, Q4_0 4.5; int8/int4 are bare widths no real file reaches")
    tooltip(controls["kv_precision"], "Precision the keys and values of past tokens are cached in (its own choice)")

    def render(**values):
        report = fit(**values)
        colour = "#1e8449" if report.fits else "#c0392b"
        notes = "".join(f"<li>{n}</li>" for n in report.notes)
        html = (f'<div style="font-size:14px"><b style="color:{colour}">'
                f'{"Fits" if report.fits else "Does not fit"}</b>: {report.summary()}'
                f'{"<ul>" + notes + "</ul>" if notes else ""}</div>')
        return html, plot_fit(report)

    return explorer(controls, render, width="640px")
