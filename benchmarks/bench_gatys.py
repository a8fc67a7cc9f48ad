"""Seconds per Gatys optimisation step and peak memory, truncated VGG19 vs the full network.

    python benchmarks/bench_gatys.py [--sizes 256 512] [--steps 10] [--device cpu]

Each configuration runs in a fresh subprocess so that peak memory (max RSS on CPU,
``torch.cuda.max_memory_allocated`` on CUDA) belongs to that configuration alone.
Weights are random (the architecture, not the values, sets the cost).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = r"""
import json, resource, sys, time, torch
from stylecore import gatys, optim, vgg
size, steps, truncate, device = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1", sys.argv[4]
hp = gatys.PAPER
ex = vgg.vgg19_features(hp.layers, hp.pooling, weights="random", truncate=truncate).to(device)
g = torch.Generator().manual_seed(0)
content = torch.rand(1, 3, size, size, generator=g).to(device)
style = torch.rand(1, 3, size, size, generator=g).to(device)
loss = gatys.GatysLoss(ex, hp, content, style)
optim.optimize_pixels(content, loss, 2, progress=False)  # warm-up
if device == "cuda":
    torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats()
res = optim.optimize_pixels(content, loss, steps, progress=False)
if device == "cuda":
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() / 2**20
else:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"size": size, "truncated": truncate, "vgg_modules": ex.depth, "s_per_step": res.seconds / steps, "peak_MiB": peak}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    import torch

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}, {args.steps} L-BFGS steps after 2 warm-up")
    print(f"{'size':>5} {'VGG19':>10} {'modules':>7} {'s/step':>8} {'peak MiB':>9}")
    for size in args.sizes:
        for truncate in (True, False):
            out = subprocess.run([sys.executable, "-c", CHILD, str(size), str(args.steps), "1" if truncate else "0", args.device], capture_output=True, text=True, check=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"{r['size']:>5} {'truncated' if truncate else 'full':>10} {r['vgg_modules']:>7} {r['s_per_step']:>8.3f} {r['peak_MiB']:>9.0f}")


if __name__ == "__main__":
    main()
