"""``python -m stylecore.sweep NOTEBOOK GRID --out DIR`` (the same as ``stylecore sweep ...``)."""

import sys

from .cli import main

sys.exit(main(["sweep", *sys.argv[1:]]))
