"""Lesson 2's architecture explorer: pick a model (or type a Hub id when online) -> its anatomy.

The logic lives in `slmcourse.anatomy` (unit-tested); this module only wires controls to it.
"""
from __future__ import annotations

import html

import ipywidgets as widgets
import matplotlib.pyplot as plt

from .. import catalogue
from ..anatomy import anatomy
from ..errors import CourseError, OfflineError
from ..memory import DEVICES
from ._common import error_html, image_widget, show_figure, style_wide, tooltip, refuses_bad_arguments

PART_COLOURS = {"embeddings": "#4c72b0", "attention": "#dd8452", "mlp": "#55a868", "norms": "#8172b3",
                "head": "#c44e52", "other": "#937860"}


def _table(rows: list[dict]) -> str:
    head = "".join(f"<th style='text-align:left;padding:2px 8px'>{html.escape(str(k))}</th>" for k in rows[0])
    body = "".join("<tr>" + "".join(f"<td style='padding:2px 8px'>{html.escape(_cell(v))}</td>" for v in row.values())
                   + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _cell(value) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)


def render_html(result) -> str:
    """The anatomy as one HTML block: config summary, parameter breakdown, memory, block structure."""
    summary = _table([{"hyperparameter": k, "value": v} for k, v in result.summary.items()])
    breakdown = _table(result.breakdown)
    memory = _table(result.memory)
    structure = html.escape(result.structure)
    return (f"<h4>{html.escape(result.name)}</h4>"
            f"<div style='display:flex;gap:24px;flex-wrap:wrap'><div><b>Config</b>{summary}</div>"
            f"<div><b>Where the parameters live</b>{breakdown}<br><b>Memory</b>{memory}</div></div>"
            f"<b>Block structure</b><pre style='font-size:12px;line-height:1.25'>{structure}</pre>")


def plot_breakdown(result, ax=None):
    """One horizontal stacked bar of the parameter parts, in millions."""
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 1.6))
    left = 0.0
    for row in result.breakdown:
        if row["parameters"]:
            value = row["parameters"] / 1e6
            ax.barh([0], [value], left=left, color=PART_COLOURS[row["part"]],
                    label=f"{row['part']} {row['share %']}%")
            left += value
    ax.set_yticks([])
    ax.set_xlabel("parameters (millions)")
    ax.set_title(f"{result.name}: where the parameters live")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.55), ncol=5, fontsize=8, frameon=False)
    ax.figure.tight_layout()
    return ax.figure


@refuses_bad_arguments
def architecture_explorer(model: str = "smollm2-135m", device: str = "Laptop (16 GB RAM)",
                          context: int = 2048) -> widgets.VBox:
    """Build the explorer. The returned VBox has `.controls` (name -> widget), `.result` (HTML), `.figure` (Image) and `.update`."""
    controls = {
        "model": widgets.Dropdown(options=[(catalogue.get(k).name, k) for k in catalogue.names()],
                                  value=catalogue.get(model).key, description="Model", style=style_wide()),
        "hub_id": widgets.Text(value="", placeholder="or a Hub id, e.g. Qwen/Qwen2.5-0.5B (online only)",
                               description="Hub id", style=style_wide(), layout=widgets.Layout(width="420px")),
        "context": widgets.IntText(value=context, description="Context (tokens)", style=style_wide()),
        "device": widgets.Dropdown(options=list(DEVICES), value=device, description="Device", style=style_wide()),
    }
    tooltip(controls["hub_id"], "Leave empty to use the model picked above. A Hub id needs a network "
                                "connection; only its config is downloaded, never weights.")
    tooltip(controls["context"], "Tokens held at once (prompt + generated text), for the KV-cache memory")
    build_button = widgets.Button(description="Show Hub model", button_style="info")
    result = widgets.HTML()
    figure = image_widget(width="640px")

    def update(_change=None) -> None:
        wanted = controls["hub_id"].value.strip() or controls["model"].value
        try:
            info = anatomy(wanted, controls["context"].value, controls["device"].value)
        except (CourseError, OfflineError) as err:
            result.value = error_html(str(err))
            figure.value = b""
            return
        result.value = render_html(info)
        show_figure(figure, plot_breakdown(info))

    def on_model(_change=None) -> None:
        controls["hub_id"].value = ""   # picking from the list replaces a typed Hub id
        update()

    controls["model"].observe(on_model, names="value")
    controls["context"].observe(update, names="value")
    controls["device"].observe(update, names="value")
    build_button.on_click(update)
    hub_row = widgets.HBox([controls["hub_id"], build_button])
    box = widgets.VBox([controls["model"], hub_row, controls["context"], controls["device"], figure, result])
    box.controls, box.result, box.figure, box.update, box.button = controls, result, figure, update, build_button
    update()
    return box
