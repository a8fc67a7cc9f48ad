"""Ablation views that are live ipywidgets in a kernel and a static grid when headless.

papermill and nbval run a real kernel, so a notebook cannot detect that nobody is
watching; notebooks therefore pass their ``interactive`` parameter explicitly. The grid is a
plain function returning a Figure; the widget only wraps a render function with
``ipywidgets.interactive_output`` and our own layout (``interact`` would render once at
creation, ``interact_manual`` renders nothing headless).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

__all__ = ["ablation_view"]


def _show(fig: Figure) -> None:
    from IPython.display import display

    display(fig)
    plt.close(fig)


def ablation_view(
    grid: Callable[[], Figure],
    render: Callable[..., Figure] | None = None,
    controls: Mapping[str, Any] | None = None,
    interactive: bool = False,
    cache: bool = True,
) -> Any:
    """Show an ablation: ``grid()`` when headless, live ``controls`` driving ``render(**values)`` otherwise.

    ``controls`` maps ``render``'s keyword names to ipywidgets (use ``continuous_update=False``
    on sliders whose render is slow). With ``cache`` every distinct setting is rendered once.
    Returns the grid Figure (headless) or the widget box (live); never blocks.
    """
    if not interactive or render is None or not controls:
        fig = grid()
        _show(fig)
        return fig

    import ipywidgets as w

    memo: dict[tuple[tuple[str, Any], ...], Figure] = {}

    def _render(**values: Any) -> None:
        key = tuple(sorted(values.items()))
        fig = memo.get(key) if cache else None
        if fig is None:
            fig = render(**values)
            if cache:
                memo[key] = fig
        _show(fig)

    out = w.interactive_output(_render, dict(controls))
    box = w.VBox([w.HBox(list(controls.values()), layout=w.Layout(flex_flow="row wrap")), out])
    from IPython.display import display

    display(box)
    return box
