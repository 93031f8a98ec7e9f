"""Figures shared by several lessons (matplotlib, inline-backend friendly: each returns its Figure)."""
from __future__ import annotations

import matplotlib.pyplot as plt

from .memory import GiB, FitReport

FIT_COLOURS = {"weights": "#4c72b0", "KV cache": "#dd8452", "activations": "#55a868"}


def plot_fit(report: FitReport, ax=None):
    """One horizontal stacked bar: weights + KV cache + activations against the usable memory."""
    if ax is not None and not callable(getattr(ax, "barh", None)):
        from .errors import CourseError

        raise CourseError(f"ax must be None or a matplotlib Axes (e.g. from plt.subplots()), "
                          f"got {ax!r} ({type(ax).__name__})")
    if ax is None:
        fig, ax = plt.subplots(figsize=(7, 2.2))
    parts = {"weights": report.weights, "KV cache": report.kv_cache, "activations": report.activations}
    left = 0.0
    for label, value in parts.items():
        ax.barh([0], [value / GiB], left=left, color=FIT_COLOURS[label], label=f"{label} {value / GiB:.2f} GiB")
        left += value / GiB
    ax.axvline(report.available / GiB, color="black", linestyle="--", label=f"usable {report.available / GiB:.1f} GiB")
    ax.set_yticks([])
    ax.set_xlabel("GiB")
    ax.set_xlim(0, max(left, report.available / GiB) * 1.1)
    ax.set_title(f"{report.model} ({report.precision}) on {report.device}: {'fits' if report.fits else 'does not fit'}")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.6), ncol=4, fontsize=8, frameon=False)
    ax.figure.tight_layout()
    return ax.figure

from .checks import guard_public as _guard_public  # noqa: E402 - issue 20: typed arguments checked on entry

_guard_public(globals())
