"""Conditional instance normalisation (Dumoulin, Shlens & Kudlur, ICLR 2017): notebook 03.

- :mod:`.network`: conditional instance norm and the N-style transfer network.
- :mod:`.training`: the perceptual losses and the checkpointed, resumable training loop.
- :mod:`.magenta`: Magenta's pretrained 26-style network and Ghiasi et al.'s arbitrary-style networks (ONNX, offline).
- :mod:`.experiments`: the Fig. 5 (N-style vs single-style) and Fig. 6 (a new style by γ, β only) studies with verdicts.
"""

from . import experiments, magenta, network, training
from .experiments import (
    fig5_verdict, fig6_row, fig6_verdict, LEARNED_MARGIN, matched_steps, n_style_row, PAPER_FIG5, style_curve,
    windowed,
)
from .magenta import ArbitraryStylization, multistyle26_network, package_model_path, stylize
from .network import checkerboard_energy, ConditionalInstanceNorm2d, instance_norm, StyleTransferNetwork
from .training import (
    carry_over, CONTENT_LAYERS, evaluate_losses, evaluation_batches, PAPER_LOSS_NETWORK, PAPER_TRAINING,
    perceptual_losses, relative_change, style_grams, STYLE_LAYERS, train_style_network, TrainConfig,
)

__all__ = [
    "experiments", "magenta", "network", "training", "ArbitraryStylization", "carry_over", "checkerboard_energy",
    "ConditionalInstanceNorm2d", "CONTENT_LAYERS", "evaluate_losses", "evaluation_batches", "fig5_verdict",
    "fig6_row", "fig6_verdict", "instance_norm", "LEARNED_MARGIN", "matched_steps", "multistyle26_network",
    "n_style_row", "package_model_path", "PAPER_FIG5", "PAPER_LOSS_NETWORK", "PAPER_TRAINING", "perceptual_losses",
    "relative_change", "style_curve", "style_grams", "STYLE_LAYERS", "StyleTransferNetwork", "stylize",
    "train_style_network", "TrainConfig", "windowed"
]
