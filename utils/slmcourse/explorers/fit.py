"""Lesson 1's "will it fit?" explorer: model, precision, context, batch, device -> memory needed."""
from __future__ import annotations

import ipywidgets as widgets

from .. import catalogue
from ..memory import DEVICES, PRECISIONS, fit
from ..plots import plot_fit
from ._common import explorer, style_wide, tooltip


def fit_explorer(model: str = "smollm2-135m", precision: str = "fp16", context: int = 2048, batch: int = 1,
                 device: str = "Laptop (16 GB RAM)") -> widgets.VBox:
    """Build the explorer. The returned VBox has `.controls` (name -> widget) and `.result` (HTML)."""
    controls = {
        "model": widgets.Dropdown(options=[(catalogue.get(k).name, k) for k in catalogue.names()],
                                  value=catalogue.get(model).key, description="Model", style=style_wide()),
        "precision": widgets.ToggleButtons(options=list(PRECISIONS), value=precision, description="Precision",
                                           style=style_wide()),
        "context": widgets.IntSlider(value=context, min=128, max=131072, step=128, description="Context (tokens)",
                                     continuous_update=False, style=style_wide(),
                                     layout=widgets.Layout(width="520px")),
        "batch": widgets.IntSlider(value=batch, min=1, max=64, description="Batch", continuous_update=False,
                                   style=style_wide()),
        "device": widgets.Dropdown(options=list(DEVICES), value=device, description="Device", style=style_wide()),
    }
    tooltip(controls["context"], "Tokens held at once: prompt + generated text")
    tooltip(controls["precision"], "Bytes per weight: fp32 4, bf16/fp16 2, int8 1, int4 0.5")

    def render(**values):
        report = fit(**values)
        colour = "#1e8449" if report.fits else "#c0392b"
        notes = "".join(f"<li>{n}</li>" for n in report.notes)
        html = (f'<div style="font-size:14px"><b style="color:{colour}">'
                f'{"Fits" if report.fits else "Does not fit"}</b>: {report.summary()}'
                f'{"<ul>" + notes + "</ul>" if notes else ""}</div>')
        return html, plot_fit(report)

    return explorer(controls, render, width="640px")
