"""stylecore: the small shared package behind the style-transfer paper notebooks.

One concept per module: ``images`` (I/O), ``data`` (sample images), ``weights`` (where
pretrained weights come from), ``vgg`` (features by layer name), ``losses`` (pure loss
functions), ``optim`` (pixel optimisation), ``gatys`` (Gatys et al. 2016 presets and loss),
``plots`` and ``widgets`` (figures and live ablations), ``run`` (output folders and summaries),
``metrics`` (did a stylisation happen).
Per paper: ``matting``, ``masks``, ``color_transfer``, ``dpst`` (Luan et al. 2017); ``cin``,
``feedforward`` (Dumoulin et al. 2017); ``clip_guidance``, ``clipstyler``, ``stylenet``,
``adain``, ``fast_clipstyler`` (Kwon & Ye 2022); ``diffusion``, ``styo``, ``fcc`` (Li et al. 2023).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("stylecore")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0+unknown"
