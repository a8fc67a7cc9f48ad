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


def test_check_param_bounds_lists_images_and_sizes(tmp_path: Path) -> None:
    from stylecore.run import check_image, check_nonempty, check_size, vgg19_bytes_per_pixel

    assert check_param("steps", 1, int, at_least=1) == 1
    with pytest.raises(ValueError, match="'steps' must be at least 1, got -3"):
        check_param("steps", -3, int, at_least=1)
    with pytest.raises(ValueError, match="'prompts' must name at least one"):
        check_nonempty("prompts", [])
    assert check_image("content", "tubingen") == "tubingen"
    (tmp_path / "bad.png").write_bytes(b"not a png")
    for path in (tmp_path / "bad.png", tmp_path / "missing.png"):
        with pytest.raises(ValueError, match="parameter 'content' is neither a sample name"):
            check_image("content", str(path))
    # 96 px: about 44 MB; the refusal names the parameter, the memory and the largest size that fits
    bpp = vgg19_bytes_per_pixel()
    assert 4000 < bpp < 6000 and vgg19_bytes_per_pixel(training=False) == bpp // 2
    assert check_size("image_size", 96, bpp) == 96
    with pytest.raises(ValueError, match=r"'image_size' = 100000 would need about \d+\.\d GiB .* use at most about \d+"):
        check_size("image_size", 100000, bpp)


def test_resolve_device_names_the_parameter_for_unknown_or_absent_devices(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="parameter 'device' must be one of"):
        resolve_device("tpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="parameter 'device' is 'cuda' but torch sees no CUDA device"):
        resolve_device("cuda")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(ValueError, match="'mps' but torch sees no Apple GPU"):
        resolve_device("mps", ("cpu", "mps"))


def test_deterministic_env_switches_torch_and_is_recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STYLECORE_DETERMINISTIC", "1")
    try:
        out = RunOutputs(tmp_path / "o", "nb", {})
        assert torch.are_deterministic_algorithms_enabled() and out.summary["environment"]["deterministic_algorithms"] is True
    finally:
        torch.use_deterministic_algorithms(False)
    monkeypatch.delenv("STYLECORE_DETERMINISTIC")
    assert RunOutputs(tmp_path / "p", "nb", {}).summary["environment"]["deterministic_algorithms"] is False
