"""Seconds per StyO step and peak memory: IDL fine-tuning step, DDIM-inversion step, sampling step with and without FCC.

    OMP_NUM_THREADS=2 python benchmarks/bench_styo.py                          # tiny config + SD 1.x size, CPU
    python benchmarks/bench_styo.py --sizes sd15 --device cuda --image-size 512 --modes train sample_off sample_fcc
    python benchmarks/bench_styo.py --sizes tiny --steps 5                      # a smoke run

Random weights throughout (the same classes and FLOPs as Stable Diffusion 1.x at ``sd15``;
timings do not depend on the values). Each (size, mode) runs in its own subprocess so that its
peak memory (CPU: peak RSS during the steps; CUDA: ``torch.cuda.max_memory_allocated``) is its own.

- ``train``: one IDL step = UNet forward + backward on the three kinds (batch 3) + Adam, fp32.
- ``invert``: one DDIM-inversion step of the source photo's latent (batch 1, the source prompt, no guidance);
  a photo-started sample costs ``sample_steps`` of these before the sampling steps.
- ``sample_off`` / ``sample_fcc``: one denoising step of the two-branch sampler (batch 4 with
  classifier-free guidance) with attention injection off / on at the content indices.

The SD-size training step peaked at 16.2 GiB RSS at 256 px (12.8 GiB of it weights, gradients and Adam state: 860 M × 16 bytes);
``--min-free-gib`` skips it (with a message) when the machine has less memory available.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

from _memory import peak_mib, reset_peak_rss, vm_mib  # benchmarks/_memory.py (this folder is sys.path[0])


def one(args: argparse.Namespace) -> dict[str, object]:
    import torch

    from stylecore.nets.ldm import build_components, ldm_from_components
    from stylecore.styo.fcc import FCCControl, fcc_processors
    from stylecore.styo.idl import build_prompt, content_token_indices, idl_losses, prompt_segments
    from stylecore.weights import random_info

    dev = torch.device(args.device)
    ldm = ldm_from_components(build_components(args.size, seed=0), random_info(args.size, 0))
    for key in ("unet", "vae", "text_encoder"):
        getattr(ldm, key).to(dev)
    side = args.image_size // ldm.latent_factor
    gen = torch.Generator().manual_seed(0)
    sched = ldm.ddpm_scheduler()
    n_params = sum(p.numel() for p in ldm.unet.parameters())
    if args.mode == "train":
        unet = ldm.unet.float().train().requires_grad_(True)
        opt = torch.optim.Adam(unet.parameters(), lr=1e-6)
        z0 = torch.randn(3, 4, side, side, device=dev)
        with torch.no_grad():
            ctx = ldm.encode_prompt([build_prompt(k) for k in ("source", "target", "aux")]).float()

        def step() -> None:
            loss = idl_losses(unet, sched, z0, ctx, gen).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    elif args.mode == "invert":
        unet, control = ldm.unet, None
        with torch.no_grad():
            ctx = ldm.encode_prompt([build_prompt("source", n_s=3)])
        z = torch.randn(1, 4, side, side, device=dev)

        @torch.no_grad()
        def step() -> None:
            unet(z, 500, encoder_hidden_states=ctx).sample
    else:
        unet = ldm.unet
        idx = content_token_indices(ldm.tokenizer, prompt_segments("stylised", n_s=3, n_c=1))
        with torch.no_grad():
            ctx = torch.cat([ldm.encode_prompt(["", ""]), ldm.encode_prompt([build_prompt("source", n_s=3), build_prompt("stylised", n_s=3)])])
        z = torch.randn(4, 4, side, side, device=dev)
        control = FCCControl(indices=idx, pairs=[(2, 3)], active=args.mode == "sample_fcc")

        @torch.no_grad()
        def step() -> None:
            unet(z, 500, encoder_hidden_states=ctx).sample

    times = []
    reset = reset_peak_rss()
    before = vm_mib("VmRSS:")
    with fcc_processors(unet, control) if args.mode not in ("train", "invert") else _nothing():
        for i in range(args.steps + 1):  # the first step warms up and is not timed
            if dev.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            step()
            if dev.type == "cuda":
                torch.cuda.synchronize()
            if i:
                times.append(time.perf_counter() - t0)
    peak, what = peak_mib(dev, reset, before)
    return {"size": args.size, "mode": args.mode, "image_size": args.image_size, "unet_params": n_params,
            "seconds_per_step": sum(times) / len(times), "min_seconds": min(times), "peak_MiB": round(peak), "peak_is": what,
            "threads": torch.get_num_threads(), "device": str(dev)}


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None






def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", nargs="+", default=["tiny", "sd15"], choices=["tiny", "sd15"])
    p.add_argument("--modes", nargs="+", default=["train", "invert", "sample_off", "sample_fcc"], choices=["train", "invert", "sample_off", "sample_fcc"])
    p.add_argument("--image-size", type=int, default=0, help="pixels; 0 means 64 for tiny and 256 for sd15 on CPU (512 is SD's own)")
    p.add_argument("--steps", type=int, default=3, help="timed steps after one warm-up step")
    p.add_argument("--device", default="cpu")
    p.add_argument("--min-free-gib", type=float, default=20.0, help="skip the sd15 training step below this much available memory (CPU)")
    p.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--size", default="tiny", help=argparse.SUPPRESS)
    p.add_argument("--mode", default="train", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        print(json.dumps(one(args)))
        return
    for size in args.sizes:
        image_size = args.image_size or (64 if size == "tiny" else 256)
        for mode in args.modes:
            free = vm_mib("MemAvailable:", "/proc/meminfo") / 1024
            if size == "sd15" and mode == "train" and args.device == "cpu" and free < args.min_free_gib:
                print(json.dumps({"size": size, "mode": mode, "skipped": f"{free:.1f} GiB available < --min-free-gib {args.min_free_gib}"}))
                continue
            cmd = [sys.executable, __file__, "--one", "--size", size, "--mode", mode, "--image-size", str(image_size), "--steps", str(args.steps), "--device", args.device]
            res = subprocess.run(cmd, capture_output=True, text=True)
            if res.returncode:
                print(json.dumps({"size": size, "mode": mode, "error": res.stderr.strip().splitlines()[-1:]}))
            else:
                print(res.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
