"""What every explorer shares: ipywidgets 7/8 compatibility, message display, grader detection."""
from __future__ import annotations

import html
import os

import ipywidgets as widgets

IPYWIDGETS_MAJOR = int(widgets.__version__.split(".")[0])


def under_grader() -> bool:
    """True while nbgrader executes a notebook (it sets NBGRADER_EXECUTION): skip widgets then."""
    return bool(os.environ.get("NBGRADER_EXECUTION"))


def tooltip(widget: widgets.Widget, text: str) -> widgets.Widget:
    """Set a hover text on ipywidgets 8 (`tooltip`) and 7 (`description_tooltip`, Colab) alike."""
    setattr(widget, "tooltip" if IPYWIDGETS_MAJOR >= 8 else "description_tooltip", text)
    return widget


def error_html(message: str) -> str:
    """A readable message box for input that makes no sense (instead of a traceback)."""
    return (f'<div style="border-left:4px solid #c0392b;padding:6px 10px;background:#fdecea">'
            f"<b>Cannot compute this:</b> {html.escape(str(message))}</div>")


def style_wide() -> dict:
    return {"description_width": "initial"}
