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


def limit_note(controls: dict) -> str:
    """A line that says which bounded controls sit at an end of their range: a typed value beyond it was
    clamped by the widget (issue 20: clamping is said on screen, not done silently). Empty otherwise."""
    notes = []
    for name, control in controls.items():
        low, high = getattr(control, "min", None), getattr(control, "max", None)
        if low is None or high is None or isinstance(control.value, (tuple, list)):
            continue
        label = (getattr(control, "description", "") or name).rstrip(": ")
        if control.value == high:
            notes.append(f"{label} is at its maximum ({high}): a larger value is clamped to it")
        elif control.value == low and low not in (0, 1):
            notes.append(f"{label} is at its minimum ({low}): a smaller value is clamped to it")
    if not notes:
        return ""
    return ('<div class="limit-note" style="color:#8a6d3b;font-size:12px">'
            + html.escape("; ".join(notes)) + "</div>")


def explorer(controls: dict, render, width: str = "640px") -> widgets.VBox:
    """Wire controls to a tested computation and show its result: the skeleton of every explorer.

    `render(**values)` gets the controls' current values and returns (html, figure or None); it raises
    CourseError for input that makes no sense, which is shown as a message (and the plot hidden)
    instead of a traceback. The returned VBox exposes `.controls`, `.result` (HTML), `.figure` (Image)
    and `.update()`, so tests can drive it headless.
    """
    from ..errors import CourseError

    result = widgets.HTML()
    figure = image_widget(width=width)

    def update(_change=None) -> None:
        try:
            html_text, fig = render(**{name: control.value for name, control in controls.items()})
        except Exception as err:  # noqa: BLE001 - a message on screen, never a traceback in a widget callback
            result.value = error_html(str(err) if isinstance(err, CourseError) else f"{type(err).__name__}: {err}")
            figure.value = b""
            figure.layout.display = "none"  # an empty image would show as a broken-image icon
            return
        result.value = html_text + limit_note(controls)
        if fig is None:
            figure.layout.display = "none"
        else:
            show_figure(figure, fig)
            figure.layout.display = None  # the default again (keeps the widget's repr unchanged)

    for control in controls.values():
        control.observe(update, names="value")
    box = widgets.VBox([*controls.values(), result, figure])
    box.controls, box.result, box.figure, box.update = controls, result, figure, update
    update()
    return box


def refuses_bad_arguments(build):
    """Wrap an explorer constructor: a value outside a control's options or range is refused with a
    CourseError naming the argument and what the control accepts (never traitlets' TraitError, never a
    silent clamp). Works with ipywidgets 7 and 8: both clamp a slider's value or raise TraitError."""
    import functools
    import inspect
    import numbers

    from ..errors import CourseError

    signature = inspect.signature(build)

    def accepts(control) -> str:
        if hasattr(control, "options"):
            labels = getattr(control, "_options_values", None) or control.options
            return "one of: " + ", ".join(str(v[1] if isinstance(v, tuple) else v) for v in list(labels)[:12])
        if hasattr(control, "min") and hasattr(control, "max"):
            return f"a number from {control.min} to {control.max}"
        return "a valid value"

    @functools.wraps(build)
    def wrapper(*args, **kwargs):
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError as err:
            raise CourseError(f"{build.__name__}: {err}") from None
        try:
            box = build(*args, **kwargs)
        except Exception as err:  # noqa: BLE001 - traitlets' TraitError, a KeyError from an options table
            if isinstance(err, CourseError):
                raise
            names = ", ".join(f"{k}={v!r}" for k, v in bound.arguments.items() if k != "kwargs")
            raise CourseError(f"{build.__name__} cannot start with {names}: {err}") from None
        shown = getattr(getattr(box, "result", None), "value", "") or ""
        if shown.startswith(error_html("")[:60]):  # the first render already refused these arguments
            message = html.unescape(shown.split("</b> ", 1)[-1].rsplit("</div>", 1)[0])
            raise CourseError(f"{build.__name__}: {message}")
        controls = getattr(box, "controls", {}) or {}
        given_values = dict(bound.arguments)
        for param in signature.parameters.values():  # newest_explorer(**defaults): check each value too
            if param.kind is inspect.Parameter.VAR_KEYWORD:
                given_values.update(given_values.pop(param.name, {}) or {})
        for name, given in given_values.items():
            control = controls.get(name)
            if control is None or isinstance(given, bool) or not isinstance(given, numbers.Real):
                continue
            if control.value != given:  # a slider clamped it
                raise CourseError(f"{build.__name__}: {name}={given!r} is outside what the control allows "
                                  f"({accepts(control)})")
        return box

    return wrapper
