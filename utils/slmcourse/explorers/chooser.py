"""Lesson 14's explorer: the model chooser (constraints in, ranked candidates with reasons out).

The logic is `slmcourse.choose.choose` (tested); this module only wires controls to it and shows a
message, not a traceback, for input that makes no sense. Formats are memory.FORMATS at their real bits
per weight; the bare int8/int4 widths are listed last and labelled as ideal bounds.
"""
from __future__ import annotations

import html

import ipywidgets as widgets

from .. import catalogue
from ..choose import DEFAULT_QUANTIZED, LICENCE_NEEDS, PREFERENCES, TASKS, Constraints, choose, ranking_basis
from ..memory import DEVICES, FORMATS
from ._common import explorer, style_wide, tooltip, refuses_bad_arguments


def format_options() -> list[tuple[str, str]]:
    """(label, format) pairs: real formats with their bits per weight, then the labelled ideal bounds."""
    real = [(f"{f.name} ({f.bits_per_weight:g} bits)", f.name) for f in FORMATS.values() if not f.ideal]
    ideal = [(f"{f.name} (ideal bound, {f.bits_per_weight:g} bits)", f.name) for f in FORMATS.values() if f.ideal]
    return real + ideal


def candidates_html(candidates, limit: int = 8) -> str:
    """An HTML table of ranked candidates: tuning, size, and a tick or a cross per reason."""
    rows = []
    for i, cand in enumerate(candidates[:limit], 1):
        reasons = "<br>".join(("✔ " if r.startswith("+") else "✘ " if r.startswith("-") else "· ")
                              + html.escape(r[2:]) for r in cand.reasons)
        colour = "#1e8449" if cand.ok else "#c0392b"
        rows.append(f'<tr><td>{i}</td><td style="color:{colour}"><b>{html.escape(cand.name)}</b></td>'
                    f"<td>{html.escape(catalogue.get(cand.key).tuning)}</td>"
                    f"<td>{cand.params / 1e6:,.0f}M</td><td style='text-align:left'>{reasons}</td></tr>")
    return ("<table><tr><th>#</th><th>model</th><th>tuning</th><th>params</th><th>why</th></tr>"
            + "".join(rows) + "</table>")


@refuses_bad_arguments
def chooser_explorer(task: str = "chat", device: str = "Laptop (16 GB RAM)", precision: str = DEFAULT_QUANTIZED,
                     context: int = 2048, licence: str = "commercial", multilingual: bool = False,
                     latency_ms: float = 0.0, prefer: str = "quality", include_newest: bool = True) -> widgets.VBox:
    """Constraints in, ranked candidates out. latency_ms = 0 switches the latency check off;
    include_newest also ranks lesson 7's 2024-26 block (Qwen3, Qwen3.5, Llama 3.2, Gemma 3 / 3n, ...)."""
    controls = {
        "task": widgets.Dropdown(options=list(TASKS), value=task, description="Task", style=style_wide()),
        "device": widgets.Dropdown(options=list(DEVICES), value=device, description="Device", style=style_wide()),
        "precision": widgets.Dropdown(options=format_options(), value=precision, description="Weight format",
                                      style=style_wide()),
        "context": widgets.IntText(value=context, description="Context (tokens)", style=style_wide()),
        "licence": widgets.ToggleButtons(options=list(LICENCE_NEEDS), value=licence, description="Licence",
                                         style=style_wide()),
        "multilingual": widgets.Checkbox(value=multilingual, description="Needs languages other than English"),
        "latency_ms": widgets.FloatText(value=latency_ms, description="Budget (ms/token, 0 = none)",
                                        style=style_wide()),
        "prefer": widgets.ToggleButtons(options=list(PREFERENCES), value=prefer, description="Prefer",
                                        style=style_wide()),
        "include_newest": widgets.Checkbox(value=include_newest, description="Include the 2024-26 models"),
    }
    tooltip(controls["licence"], "commercial: allows commercial use (possibly with terms); permissive: MIT/Apache only")
    tooltip(controls["prefer"], "quality: the largest model that meets everything first (parameter count as a "
                                "proxy), except that the models lesson 10 measured are ordered by their measured "
                                "accuracy; efficiency: the smallest")
    tooltip(controls["include_newest"], "also rank lesson 7's 2024-26 block: Qwen3, Qwen3.5, Llama 3.2, Gemma 3, "
                                        "Gemma 3n, SmolLM3, Phi-4-mini, LFM2, Granite 4, Falcon-H1, OLMoE, "
                                        "DeepSeek-V2-Lite, ModernBERT, EmbeddingGemma")

    def render(task, device, precision, context, licence, multilingual, latency_ms, prefer, include_newest):
        cands = choose(Constraints(task=task, device=device, precision=precision, context=context, licence=licence,
                                   multilingual=multilingual, latency_ms=latency_ms or None), prefer=prefer,
                       include_newest=include_newest)
        n_ok = sum(c.ok for c in cands)
        head = (f"<b>{n_ok} model{'s' if n_ok != 1 else ''} meet{'s' if n_ok == 1 else ''} every constraint</b>"
                if n_ok else "<b>No model meets every constraint</b>: the closest ones first")
        basis = f"<br><i>Order: {html.escape(ranking_basis(prefer))}.</i>"
        return f"<div style='font-size:13px'>{head}{basis}{candidates_html(cands)}</div>", None

    return explorer(controls, render)
