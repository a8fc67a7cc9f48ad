"""Seconds per CLIPstyler training step and peak memory: all crops in one CLIP call vs one call per crop.

    OMP_NUM_THREADS=2 python benchmarks/bench_clipstyler.py                 # 512 px, 64 crops, ViT-B-32, CPU
    python benchmarks/bench_clipstyler.py --device cuda --steps 10
    python benchmarks/bench_clipstyler.py --size 128 --crops 8 --clip stylecore-tiny-ViT   # a smoke run

Each mode runs in its own subprocess so that its peak memory (CPU: max RSS; CUDA:
``torch.cuda.max_memory_allocated``) is its own. Weights are random (same architecture and
FLOPs as the pretrained models; timings do not depend on the values).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

from _memory import peak_mib, reset_peak_rss, vm_mib  # benchmarks/_memory.py (this folder is sys.path[0])


def one_mode(args: argparse.Namespace) -> dict[str, float]:
    import torch

    from stylecore.clip_guidance import load_clip
    from stylecore.clipstyler import AUTHORS_CODE, ClipStylerLoss, StyleNet, with_overrides
    from stylecore.vgg import vgg19_features

    dev = torch.device(args.device)
    torch.manual_seed(0)
    hp = with_overrides(AUTHORS_CODE, n_patches=args.crops, patch_size=args.patch)
    clip = load_clip(args.clip, weights="random", device=dev)
    vgg = vgg19_features(hp.content_layers, pooling=hp.pooling, weights="random").to(dev)
    content = torch.rand(1, 3, args.size, args.size, device=dev)
    net = StyleNet().to(dev)
    loss_fn = ClipStylerLoss(clip, vgg, content, "oil painting of flowers", hp, batched=args.mode == "batched")
    opt = torch.optim.Adam(net.parameters(), lr=hp.lr)
    times = []
    reset = reset_peak_rss()  # CPU: measure the steps' peak, not the model construction's
    before = vm_mib("VmRSS:")
    for i in range(args.steps + 1):  # the first step warms up (allocator, kernels) and is not timed
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        total = torch.stack(list(loss_fn(net(content)).values())).sum()
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        if i:
            times.append(time.perf_counter() - t0)
    peak, what = peak_mib(dev, reset, before)
    return {"seconds_per_step": sum(times) / len(times), "min_seconds": min(times), "peak_MiB": peak, "peak_is": what, "threads": torch.get_num_threads()}






def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=512, help="content image side in pixels (paper: 512)")
    p.add_argument("--crops", type=int, default=64, help="n, crops per step (paper: 64)")
    p.add_argument("--patch", type=int, default=128, help="crop side (paper: 128)")
    p.add_argument("--steps", type=int, default=2, help="timed steps per mode (after one warm-up step)")
    p.add_argument("--clip", default="ViT-B-32", help="open_clip architecture (paper: ViT-B-32)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--mode", choices=["batched", "per_crop", "both"], default="both")
    args = p.parse_args()
    if args.mode != "both":
        print(json.dumps(one_mode(args)))
        return
    print(f"CLIPstyler step: {args.size} px, {args.crops} crops of {args.patch} px, CLIP {args.clip} (random weights), device {args.device}, {args.steps} timed steps")
    results = {}
    for mode in ("batched", "per_crop"):
        cmd = [sys.executable, __file__, *sys.argv[1:], "--mode", mode]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode:
            sys.exit(f"{mode} run failed:\n{done.stderr[-2000:]}")
        results[mode] = json.loads(done.stdout.strip().splitlines()[-1])
        r = results[mode]
        print(f"  {mode:9s} {r['seconds_per_step']:8.3f} s/step (min {r['min_seconds']:.3f})   peak {r['peak_MiB']:8.0f} MiB ({r['peak_is']})   threads {r['threads']}")
    print(f"  speed-up of one batched CLIP call: {results['per_crop']['seconds_per_step'] / results['batched']['seconds_per_step']:.2f}×")


if __name__ == "__main__":
    main()
