from __future__ import annotations

import json
from pathlib import Path

import ipywidgets
import matplotlib.pyplot as plt
import pytest
import torch
from matplotlib.figure import Figure

from stylecore.plots import image_grid, plot_losses, save_figure, show_images
from stylecore.run import RunOutputs, check_param, resolve_device
from stylecore.weights import WeightsInfo
from stylecore.widgets import ablation_view

LABEL = WeightsInfo("VGG19", "random", seed=0).label


def test_show_images_labels_weights(tmp_path: Path) -> None:
    fig = show_images([torch.rand(1, 3, 8, 8)] * 3, ["a", "b", "c"], weights_label=LABEL, ncols=2)
    assert [ax.get_title() for ax in fig.axes[:3]] == ["a", "b", "c"]
    assert any("RANDOM" in t.get_text() for t in fig.texts)
    path = save_figure(fig, tmp_path / "f.png")
    assert path.stat().st_size > 1000
    with pytest.raises(ValueError, match="titles"):
        show_images([torch.rand(1, 3, 8, 8)], ["a", "b"])


def test_image_grid_and_losses() -> None:
    fig = image_grid([[torch.rand(1, 3, 8, 8)] * 3] * 2, ["r0", "r1"], ["c0", "c1", "c2"], weights_label=LABEL)
    assert len(fig.axes) == 6 and fig.axes[0].get_ylabel() == "r0" and fig.axes[2].get_title() == "c2"
    fig = plot_losses({"run1": {"content": [3, 2, 1], "style": [5, 4, 3]}, "run2": {"content": [4, 1, 0.5]}})
    assert [ax.get_title() for ax in fig.axes] == ["content", "style"]
    assert len(fig.axes[0].lines) == 2 and len(fig.axes[1].lines) == 1


def test_ablation_view_headless_shows_grid_only() -> None:
    calls = []
    grid_fig = plt.figure()
    out = ablation_view(lambda: grid_fig, render=lambda **kw: calls.append(kw), controls={"a": ipywidgets.IntSlider(1)}, interactive=False)
    assert out is grid_fig and calls == []


def test_ablation_view_live_renders_with_control_values() -> None:
    calls = []

    def render(a: int, b: str) -> Figure:
        calls.append((a, b))
        return plt.figure()

    slider, drop = ipywidgets.IntSlider(value=2, min=0, max=5), ipywidgets.Dropdown(options=["x", "y"], value="x")
    box = ablation_view(lambda: pytest.fail("grid must not run live"), render, {"a": slider, "b": drop}, interactive=True)
    assert isinstance(box, ipywidgets.VBox)
    assert calls == [(2, "x")]
    slider.value = 3
    slider.value = 2  # cached: not rendered again
    assert calls == [(2, "x"), (3, "x")]


def test_check_param() -> None:
    assert check_param("size", 64, int) == 64
    assert check_param("lr", 1, float) == 1.0
    with pytest.raises(TypeError, match="-p size"):
        check_param("size", "64", int)
    with pytest.raises(TypeError):
        check_param("size", True, int)
    assert check_param("styles", '["a", "b"]', list) == ["a", "b"]
    with pytest.raises(TypeError, match="-y"):
        check_param("styles", "a, b", list)
    with pytest.raises(ValueError, match="one of"):
        check_param("optimizer", "sgd", str, ("lbfgs", "adam"))


def test_resolve_device_auto_follows_cuda_and_rejects_other_names(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda")
    with pytest.raises(ValueError, match="one of"):
        resolve_device("gpu")


def test_run_outputs_summary(tmp_path: Path) -> None:
    out = RunOutputs(tmp_path / "o", "nb", {"size": 64})
    out.weights("vgg", WeightsInfo("VGG19", "random", seed=0))
    out.image(torch.rand(1, 3, 4, 4), "img")
    out.figure(plt.figure(), "fig")
    out.experiment("e", loss=1.5)
    summary = json.loads(out.save().read_text())
    assert summary["parameters"] == {"size": 64} and summary["experiments"]["e"] == {"loss": 1.5}
    assert summary["weights"]["vgg"]["pretrained"] is False and summary["files"] == ["img.png", "fig.png"]
    assert (tmp_path / "o" / "img.png").exists() and (tmp_path / "o" / "fig.png").exists()
