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


def code_version(root: "str | None" = None) -> str:
    """``__version__`` plus a digest of the package's Python sources, e.g. ``0.1.0+3f2a…``.

    The version number stays the same while the library changes between releases; results
    keyed on it (``stylecore.sweep`` runs) would then survive a change that alters them. The
    digest covers every ``*.py`` file under ``root`` (default: this package), by relative path
    and content, so any edit gives a new value.
    """
    import hashlib
    from pathlib import Path

    base = Path(root) if root is not None else Path(__file__).resolve().parent
    h = hashlib.sha256()
    for path in sorted(base.rglob("*.py")):
        h.update(path.relative_to(base).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return f"{__version__}+{h.hexdigest()[:12]}"
