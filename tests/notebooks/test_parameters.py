"""Bad notebook parameters stop in the validation cell, within seconds, with one message naming the parameter.

Only the parameters cell (cell 1), the injected values (as papermill injects them: after cell 1) and the
validation cell (cell 2) run, in one kernel per notebook shared by its cases; cell 1 resets every
parameter before each case. The cases are issue 25's table (the eight that failed late or unclearly) and
cases of each kind that already failed well (wrong types, unknown enums, missing/corrupt/truncated
images, zero and negative sizes, empty lists, absurd sizes, unknown devices), plus each notebook's quick
parameters, which must pass the same cells.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import nbformat
import pytest

from .conftest import NOTEBOOKS, quick_parameters

pytestmark = pytest.mark.notebook

N1, N2, N3, N4, N5, N6 = ("01_gatys_2016_neural_style", "02_luan_2017_deep_photo_style", "03_dumoulin_2017_conditional_instance_norm",
                          "04_patashnik_2021_styleclip", "05_kwon_2022_clipstyler", "06_li_2023_styo")
MISSING, CORRUPT, TRUNCATED = "<missing image>", "<corrupt image>", "<truncated image>"

# (notebook, {parameter: value}, the parameter the message must name)
CASES = [
    # issue 25, section 2: each failed late or with torch's/Python's own message
    (N1, {"device": "tpu"}, "device"),
    (N1, {"style_images": []}, "style_images"),
    (N5, {"prompts": []}, "prompts"),
    (N1, {"image_size": 100000}, "image_size"),
    (N2, {"image_size": 100000}, "image_size"),
    (N5, {"image_size": 100000}, "image_size"),
    (N6, {"idl_steps": -3}, "idl_steps"),
    (N4, {"opt_steps": -3}, "opt_steps"),
    (N1, {"iterations": -3}, "iterations"),
    # the kinds that already failed in the validation cell: kept so
    (N1, {"image_size": "abc"}, "image_size"),
    (N1, {"preset": "bogus"}, "preset"),
    (N1, {"content_image": MISSING}, "content_image"),
    (N1, {"content_image": CORRUPT}, "content_image"),
    (N1, {"image_size": 0}, "image_size"),
    (N2, {"preset": "bogus"}, "preset"),
    (N2, {"style": TRUNCATED}, "style"),
    (N2, {"stage1_iterations": 0}, "stage1_iterations"),
    (N3, {"styles": []}, "styles"),
    (N3, {"crop_size": 0}, "crop_size"),
    (N3, {"vgg_variant": "bogus"}, "vgg_variant"),
    (N3, {"device": "tpu"}, "device"),
    (N2, {"device": "tpu"}, "device"),
    (N5, {"device": "tpu"}, "device"),
    (N4, {"generator_config": "bogus"}, "generator_config"),
    (N4, {"clip_input": "bogus"}, "clip_input"),
    (N4, {"real_image": CORRUPT}, "real_image"),
    (N5, {"preset": "bogus"}, "preset"),
    (N5, {"n_patches": 0}, "n_patches"),
    (N5, {"widget_taus": "0.5"}, "widget_taus"),
    (N6, {"device": "tpu"}, "device"),
    (N6, {"image_size": 60}, "image_size"),
    (N6, {"source_image": MISSING}, "source_image"),
]
SECONDS = 30  # the validation cell of any notebook, bad input or good, on a loaded 2-core machine (measured: < 5 s)


class Kernel:
    """One kernel in the notebooks folder, as the notebook tests run it (offline, random weights)."""

    def __init__(self, torch_home: Path) -> None:
        from jupyter_client.manager import KernelManager

        env = {k: v for k, v in os.environ.items() if k not in ("STYLECORE_WEIGHTS", "STYLECORE_VGG19_WEIGHTS", "STYLECORE_CLIP_WEIGHTS")}
        env.update(TORCH_HOME=str(torch_home), STYLECORE_OFFLINE="1", MPLBACKEND="Agg", OMP_NUM_THREADS=env.get("OMP_NUM_THREADS", "1"))
        self.km = KernelManager(kernel_name="python3")
        self.km.start_kernel(cwd=str(NOTEBOOKS), env=env)
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=120)

    def execute(self, code: str, timeout: float = 300) -> dict:
        reply = self.kc.execute_interactive(code, timeout=timeout, output_hook=lambda msg: None)
        return reply["content"]

    def close(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)


@pytest.fixture(scope="module")
def kernels(tmp_path_factory: pytest.TempPathFactory):
    started: dict[str, Kernel] = {}

    def get(stem: str) -> Kernel:
        if stem not in started:
            started[stem] = Kernel(tmp_path_factory.mktemp("torch-home"))
            started[stem].execute("import stylecore, torch")  # imports outside the timed cell
        return started[stem]

    yield get
    for k in started.values():
        k.close()


@pytest.fixture(scope="module")
def bad_images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    import numpy as np
    from PIL import Image

    d = tmp_path_factory.mktemp("images")
    Image.fromarray((np.random.default_rng(0).random((64, 64, 3)) * 255).astype("uint8")).save(d / "good.png")
    (d / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not an image")
    data = (d / "good.png").read_bytes()
    (d / "truncated.png").write_bytes(data[: len(data) // 2])
    return {MISSING: str(d / "missing.png"), CORRUPT: str(d / "corrupt.png"), TRUNCATED: str(d / "truncated.png")}


def _cells(stem: str) -> tuple[str, str]:
    nb = nbformat.read(NOTEBOOKS / f"{stem}.ipynb", as_version=4)
    assert "parameters" in nb.cells[1].metadata.get("tags", []), f"{stem}: cell 1 is not the parameters cell"
    return nb.cells[1].source, nb.cells[2].source


def _validate(kernels, stem: str, overrides: dict, out: Path) -> tuple[dict, float]:
    params, validation = _cells(stem)
    values = {**quick_parameters(stem), "output_dir": str(out), "interactive": False, **overrides}
    injected = "\n".join(f"{k} = {json.loads(json.dumps(v))!r}" for k, v in values.items())
    k = kernels(stem)
    assert k.execute(params + "\n" + injected)["status"] == "ok"
    t0 = time.perf_counter()
    reply = k.execute(validation)
    return reply, time.perf_counter() - t0


@pytest.mark.parametrize(("stem", "overrides", "name"), CASES, ids=[f"{s[:2]}-{'-'.join(map(str, o))}={list(o.values())[0]!r:.12}" for s, o, _ in CASES])
def test_bad_parameter_stops_in_the_validation_cell(kernels, bad_images, tmp_path, stem, overrides, name) -> None:
    overrides = {k: bad_images.get(v, v) if isinstance(v, str) else v for k, v in overrides.items()}
    reply, seconds = _validate(kernels, stem, overrides, tmp_path / "out")
    assert reply["status"] == "error", f"{stem} accepted {overrides}"
    assert reply["ename"] in ("ValueError", "TypeError"), (reply["ename"], reply["evalue"])
    assert name in reply["evalue"], f"the message does not name {name!r}: {reply['evalue']}"
    assert seconds < SECONDS
    assert "\n" not in reply["evalue"].strip()  # one message


@pytest.mark.parametrize("stem", [N1, N2, N3, N4, N5, N6])
def test_quick_parameters_pass_the_validation_cell(kernels, tmp_path, stem) -> None:
    reply, seconds = _validate(kernels, stem, {}, tmp_path / "out")
    assert reply["status"] == "ok", f"{reply.get('ename')}: {reply.get('evalue')}"
    assert seconds < SECONDS * 2  # also loads the images (and notebook 03 its VGG)
