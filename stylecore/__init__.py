"""stylecore: the small shared package behind the style-transfer paper notebooks.

The folder listing is the architecture:

- shared modules, one concept each: ``images`` (I/O), ``data`` (sample images), ``weights`` (where pretrained
  weights come from), ``cache`` (results on disk), ``run`` (output folders, parameters, summaries), ``plots`` and
  ``widgets`` (figures and ablation views), ``losses`` (pure loss functions), ``optim`` (pixel optimisation),
  ``metrics`` (did a stylisation happen), ``clip_guidance`` (the CLIP losses of StyleCLIP and CLIPstyler),
  ``compiling`` (``torch.compile`` options), ``sweep`` (parameter sweeps, locally or on Ray);
- ``nets``: the networks in their upstream checkpoint layouts (VGG19, StyleGAN2, IR-SE50, AdaIN, Stable Diffusion);
- one module or folder per paper, each imported by its notebook as one name: ``gatys`` (01), ``deep_photo`` (02),
  ``cin`` (03), ``styleclip`` (04), ``clipstyler`` (05), ``styo`` (06).

Shared modules import only shared modules; ``nets`` imports shared modules; a paper imports shared modules and
``nets``, never another paper (``tests/test_layout.py``).
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
