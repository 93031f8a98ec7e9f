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


def image_widget(**layout) -> widgets.Image:
    """An Image widget for an explorer's plot (see `show_figure`)."""
    return widgets.Image(format="png", layout=widgets.Layout(**layout) if layout else None)


def show_figure(target: widgets.Image, fig) -> None:
    """Render a matplotlib figure into an Image widget and close it.

    Explorers draw into an Image widget rather than an Output widget: an Output widget's captured
    display messages leak into the cell's output under nbval and other headless runners, while an
    image value is plain widget state that works the same in JupyterLab, Colab and tests.
    """
    import io

    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    target.value = buffer.getvalue()
