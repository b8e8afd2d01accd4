"""The figure and axes every course_utils plot draws on (private helper shared by bench and latency)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def figure_and_axes(ax: Axes | None) -> tuple[Figure, Axes]:
    """`ax` and its figure, or a new 6x4 figure with one axes.

    Matplotlib's object API (not pyplot): no display needed (Agg) and pyplot's global state is left alone.
    Imported lazily so that importing course_utils does not import matplotlib.
    """
    from matplotlib.figure import Figure

    if ax is None:
        fig = Figure(figsize=(6, 4), layout="constrained")
        return fig, fig.add_subplot()
    return ax.get_figure(), ax  # type: ignore[return-value]
