"""Seconds per Gatys optimisation step and peak memory, truncated VGG19 vs the full network.

    python benchmarks/bench_gatys.py [--sizes 256 512] [--steps 10] [--device cpu]

Each configuration runs in a fresh subprocess. Peak memory on CPU is the process RSS sampled
while the steps run (and, as "loop", its rise above the RSS before them); on CUDA it is
``torch.cuda.max_memory_allocated``.
Weights are random (the architecture, not the values, sets the cost).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = r"""
import gc, json, sys, threading, time, psutil, torch
from stylecore import gatys, optim, vgg
size, steps, truncate, device = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1", sys.argv[4]
hp = gatys.PAPER
ex = vgg.vgg19_features(hp.layers, hp.pooling, weights="random", truncate=truncate).to(device)
g = torch.Generator().manual_seed(0)
content = torch.rand(1, 3, size, size, generator=g).to(device)
style = torch.rand(1, 3, size, size, generator=g).to(device)
loss = gatys.GatysLoss(ex, hp, content, style)
optim.optimize_pixels(content, loss, 2, progress=False)  # warm-up
gc.collect()
proc, samples, done = psutil.Process(), [], threading.Event()
def sample():  # RSS sampled every 2 ms while the steps run (max RSS would include building the model)
    while not done.is_set():
        samples.append(proc.memory_info().rss); time.sleep(0.002)
base = proc.memory_info().rss
if device == "cuda":
    torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats()
sampler = threading.Thread(target=sample); sampler.start()
res = optim.optimize_pixels(content, loss, steps, progress=False)
done.set(); sampler.join()
if device == "cuda":
    torch.cuda.synchronize()
    peak, extra = torch.cuda.max_memory_allocated() / 2**20, float("nan")
else:
    peak, extra = max(samples) / 2**20, (max(samples) - base) / 2**20
print(json.dumps({"size": size, "truncated": truncate, "vgg_modules": ex.depth, "s_per_step": res.seconds / steps, "peak_MiB": peak, "loop_MiB": extra}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    import torch

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}, {args.steps} L-BFGS steps after 2 warm-up")
    print(f"{'size':>5} {'VGG19':>10} {'modules':>7} {'s/step':>8} {'peak MiB':>9} {'loop MiB':>9}")
    for size in args.sizes:
        for truncate in (True, False):
            out = subprocess.run([sys.executable, "-c", CHILD, str(size), str(args.steps), "1" if truncate else "0", args.device], capture_output=True, text=True, check=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"{r['size']:>5} {'truncated' if truncate else 'full':>10} {r['vgg_modules']:>7} {r['s_per_step']:>8.3f} {r['peak_MiB']:>9.0f} {r['loop_MiB']:>9.0f}")


if __name__ == "__main__":
    main()
