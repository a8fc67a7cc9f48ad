"""CLIPstyler (Kwon & Ye, CVPR 2022): notebook 05.

- :mod:`.training`: the presets, the loss (directional CLIP, patch CLIP with threshold rejection, content, TV) and the
  checkpointed training of the style network.
- :mod:`.stylenet`: the style networks f: the official U-Net and a lighter one.
- :mod:`.fast`: Fast CLIPstyler (Sec. 5.1): AdaIN's encoder and a text-conditioned decoder, one forward pass.
- :mod:`.live`: the notebook's plumbing: the run's settings, the live view, the ablation evidence and verdicts.

The CLIP losses shared with StyleCLIP are in :mod:`stylecore.clip_guidance`; AdaIN's networks in :mod:`stylecore.nets`.
"""

from . import fast, live, stylenet, training
from .fast import FAST_PRESETS, load_fast_clipstyler, train_fast_clipstyler
from .stylenet import style_network
from .training import ABLATIONS, ClipStylerLoss, GLOBAL_LOSS, PRESETS, train_clipstyler

__all__ = [
    "fast", "live", "stylenet", "training", "ABLATIONS", "ClipStylerLoss", "FAST_PRESETS", "GLOBAL_LOSS",
    "load_fast_clipstyler", "PRESETS", "style_network", "train_clipstyler", "train_fast_clipstyler"
]
