"""Seconds per StyleCLIP optimisation step and per global-direction edit, and peak memory.

    OMP_NUM_THREADS=2 python benchmarks/bench_styleclip.py                          # tiny-64 and ffhq-1024, CPU
    python benchmarks/bench_styleclip.py --configs tiny-64 --clip stylecore-tiny-ViT  # a smoke run
    python benchmarks/bench_styleclip.py --device cuda --steps 10

One optimisation step = synthesis + D_CLIP + λ_L2 + λ_ID (IR-SE50) forward and backward, Adam
update (``stylecore.styleclip.latent.optimize_latent``'s loop body). One global-direction edit = Δs
from the relevance at β, s + αΔs, one synthesis (the relevance itself is precomputed; random
here: its cost is the pre-processing, not the edit). Each configuration runs in its own
subprocess so that its peak memory (CPU: peak RSS during the timed work; CUDA: max allocated)
is its own. Weights are random: the same architectures and FLOPs as the pretrained ones.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

from _memory import reset_peak_rss, vm_mib  # benchmarks/_memory.py (this folder is sys.path[0])






def one_config(args: argparse.Namespace) -> dict[str, float | str]:
    import torch

    from stylecore.nets import arcface, stylegan2 as sg
    from stylecore.styleclip import global_directions as gd, latent as sc
    from stylecore.clip_guidance import load_clip

    dev = torch.device(args.device)
    torch.manual_seed(0)
    g, w_avg, _ = sg.load_stylegan2(args.config, weights="random")
    g = g.to(dev).requires_grad_(False)
    w_avg = w_avg.to(dev)
    clip = load_clip(args.clip, weights="random", device=dev)
    net = arcface.load_ir_se50(weights="random")[0].to(dev)
    text = clip.encode_texts(["a person with purple hair"])[0]
    w_s = g.w_plus(w_avg).detach()
    noise = g.fixed_noise()
    with torch.no_grad():
        src = g.synthesis(g.w_to_s(w_s), noise)
    w = w_s.clone().requires_grad_(True)
    opt = torch.optim.Adam([w], lr=0.1)
    sync = (lambda: torch.cuda.synchronize()) if dev.type == "cuda" else (lambda: None)
    reset = reset_peak_rss()
    step_times = []
    for i in range(args.steps + 1):  # the first step warms up and is not timed
        sync()
        t0 = time.perf_counter()
        img = g.synthesis(g.w_to_s(w), noise)
        loss = sc.clip_distance(clip, img, text).mean() + 0.008 * ((w - w_s) ** 2).sum() + 0.005 * arcface.identity_loss(net, img, src)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sync()
        if i:
            step_times.append(time.perf_counter() - t0)
    s = g.w_to_s(w_s)
    n = sum(s[l].shape[1] for l in gd.manipulated_layers(g))
    fs3 = torch.nn.functional.normalize(torch.randn(n, text.shape[0], device=dev), dim=-1)
    std = torch.rand(n, device=dev)
    edit_times = []
    for i in range(args.steps + 1):
        sync()
        t0 = time.perf_counter()
        with torch.no_grad():
            ds, _ = gd.global_direction(fs3, text, std, 0.1)
            g.synthesis(gd.apply_direction(g, s, ds, 4.0), noise)
        sync()
        if i:
            edit_times.append(time.perf_counter() - t0)
    if dev.type == "cuda":
        peak, what = torch.cuda.max_memory_allocated(dev) / 2**20, "CUDA max allocated"
    else:
        peak, what = (vm_mib("VmHWM:"), "peak RSS during the timed work") if reset else (float("nan"), "unavailable")
    return {"seconds_per_opt_step": sum(step_times) / len(step_times), "seconds_per_global_edit": sum(edit_times) / len(edit_times),
            "peak_MiB": peak, "peak_is": what, "threads": torch.get_num_threads(), "size": g.size}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--configs", nargs="+", default=["tiny-64", "ffhq-1024"], help="stylecore.nets.stylegan2.CONFIGS keys")
    p.add_argument("--clip", default="ViT-B-32", help="open_clip architecture (paper: ViT-B-32)")
    p.add_argument("--steps", type=int, default=2, help="timed steps/edits per configuration (after one warm-up)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--config", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.config:
        print(json.dumps(one_config(args)))
        return
    print(f"StyleCLIP: CLIP {args.clip} + IR-SE50 (random weights), device {args.device}, {args.steps} timed steps")
    for config in args.configs:
        done = subprocess.run([sys.executable, __file__, *sys.argv[1:], "--config", config], capture_output=True, text=True, check=False)
        if done.returncode:
            sys.exit(f"{config} failed:\n{done.stderr[-2000:]}")
        r = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"  {config:10s} {r['size']:5d} px  {r['seconds_per_opt_step']:8.3f} s/optimisation step   {r['seconds_per_global_edit']:8.4f} s/global edit"
              f"   peak {r['peak_MiB']:7.0f} MiB ({r['peak_is']})   threads {r['threads']}")


if __name__ == "__main__":
    main()
