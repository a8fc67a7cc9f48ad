"""stylecore: the small shared package behind the style-transfer paper notebooks.

One concept per module: ``images`` (I/O), ``data`` (sample images), ``weights`` (where
pretrained weights come from), ``vgg`` (features by layer name), ``losses`` (pure loss
functions), ``optim`` (pixel optimisation), ``gatys`` (Gatys et al. 2016 presets and loss),
``plots`` and ``widgets`` (figures and live ablations), ``run`` (output folders and summaries).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("stylecore")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0+unknown"
