"""Every concept diagram renders: a Figure with drawn shapes, saved to PNG without error."""
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from slmcourse import diagrams  # noqa: E402


def test_every_lesson_has_diagrams():
    assert diagrams.__all__, "no concept diagram is registered in slmcourse.diagrams"


@pytest.mark.parametrize("name", diagrams.__all__)
def test_diagram_renders(name):
    fig = getattr(diagrams, name)()
    assert isinstance(fig, matplotlib.figure.Figure)
    shapes = sum(len(ax.patches) + len(ax.texts) + len(ax.images) + len(ax.lines) for ax in fig.axes)
    assert shapes >= 5, f"{name} draws almost nothing ({shapes} shapes)"
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=60)
    assert buffer.tell() > 2000
    plt.close(fig)
