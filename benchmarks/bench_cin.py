"""Throughput of the Dumoulin et al. 2017 style network, and training-step time.

    OMP_NUM_THREADS=2 PYTHONPATH=. python benchmarks/bench_cin.py [--device cpu] [--repeats 5]

Prints: stylisation images/s at 256 and 512 px (paper widths, batch 1, no grad), and seconds
per training step (network + VGG19 perceptual losses + Adam) for the paper's batch 16 × 256²
and for the notebook's quick-mode settings. Weights are random: speed does not depend on them.
"""

from __future__ import annotations

import argparse
import time
import warnings

import torch

from stylecore.cin import StyleTransferNetwork
from stylecore.feedforward import CONTENT_LAYERS, STYLE_LAYERS, TrainConfig, perceptual_losses
from stylecore.losses import gram_matrix
from stylecore.vgg import vgg19_features


def _time(fn, repeats: int, device: str) -> float:
    fn()  # warm-up
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(repeats):
        fn()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return (time.perf_counter() - t) / repeats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--paper-batch", type=int, default=16, help="batch of the paper-size training step (16 in the paper)")
    args = ap.parse_args()
    dev = args.device
    print(f"torch {torch.__version__}, device {dev}, threads {torch.get_num_threads()}")
    torch.manual_seed(0)
    net = StyleTransferNetwork(n_styles=32).to(dev).eval()
    for size in (256, 512):
        x = torch.rand(1, 3, size, size, device=dev)
        with torch.no_grad():
            s = _time(lambda: net(x, 3), args.repeats, dev)
        print(f"stylisation {size}x{size}: {1 / s:7.2f} images/s  ({s * 1000:.0f} ms/image)")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vgg = vgg19_features(tuple(dict.fromkeys((*STYLE_LAYERS, *CONTENT_LAYERS))), weights="random").to(dev)
    for label, width, batch, crop, reps in (("paper: width 1, batch %d, 256 px" % args.paper_batch, 1.0, args.paper_batch, 256, max(1, args.repeats // 2)), ("quick mode: width 0.5, batch 2, 64 px", 0.5, 2, 64, args.repeats * 2)):
        cfg = TrainConfig(steps=1, batch_size=batch, crop_size=crop)
        model = StyleTransferNetwork(n_styles=2, width=width).to(dev)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        grams = {k: gram_matrix(v, normalize=True) for k, v in vgg(torch.rand(1, 3, 256, 256, device=dev)).items() if k in STYLE_LAYERS}
        batch_x = torch.rand(batch, 3, crop, crop, device=dev)

        def step() -> None:
            terms = perceptual_losses(vgg, model(batch_x, 0), batch_x, grams, cfg)
            opt.zero_grad()
            (terms["content"] + terms["style"]).backward()
            opt.step()

        s = _time(step, reps, dev)
        print(f"training step ({label}): {s:.3f} s/step -> 40,000 steps = {s * 40000 / 3600:.1f} h")


if __name__ == "__main__":
    main()
