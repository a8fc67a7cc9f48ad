"""Seconds per CLIPstyler training step: the official ``train_CLIPstyler.py`` step structure vs stylecore's.

    OMP_NUM_THREADS=2 python benchmarks/bench_clipstyler.py                 # 512 px, 64 crops of 128 px, ViT-B-32, CPU
    python benchmarks/bench_clipstyler.py --profile                         # + where stylecore's step goes
    python benchmarks/bench_clipstyler.py --rounds 0 --profile              # the profile alone
    python benchmarks/bench_clipstyler.py --size 128 --crops 8 --patch 64 --clip stylecore-tiny-ViT   # a smoke run

The reference re-creates the step of github.com/cyclomon/CLIPstyler ``train_CLIPstyler.py`` (commit 4843cec):
StyleNet forward on the content; ImageNet-normalised output through all 37 modules of torchvision's
``vgg19().features`` (in-place ReLU), content MSE at indices 21 and 31; for each of the n crops, in a
Python loop, ``RandomCrop(128)`` then ``RandomPerspective(fill=0, p=1, distortion_scale=0.5)`` then
``Resize(224)`` (torchvision.transforms); one CLIP image encode of the n-crop batch (after
``clip_normalize``'s bicubic interpolate to 224 and normalisation); directional patch loss with
``loss < thresh`` set to 0; one CLIP encode of the whole output resized to 224 for the global
directional loss; the 4-direction TV loss; Adam. ``clip.load`` leaves CLIP's parameters requiring
grad, so the official backward also computes (and accumulates) CLIP's weight gradients; the row
"CLIP frozen" runs the same structure with CLIP frozen, to separate that from the loop structure.

All rows share one StyleNet initialisation (each with its own copy and Adam), one random CLIP
(open_clip ViT-B-32) and one random VGG19; weights are random (same architecture and FLOPs as the
pretrained models; timings do not depend on the values). Steps are PAIRED: each round runs one
step of every row in turn, and the table gives medians over rounds and the median of the per-round
ratios, so a change of machine load hits every row alike. Last, the FLOP bound: the matmul,
convolution and attention FLOPs of one stylecore step (forward + backward, counted by
``torch.utils.flop_counter``) at this machine's measured matmul rate.

Row "stylecore, compiled" (``--no-compile`` skips it): what ``train_clipstyler(compile=True)`` runs,
StyleNet, the VGG content path and CLIP's image encoder (64 crops + the whole output) under
``torch.compile``, the crops and Adam eager. Its warm-up step holds the compile: printed are the
compile time (warm-up − median step), the break-even step count against the eager stylecore row,
and the peak RSS of one step eager vs compiled. GPU (not run here, no GPU available):
``python benchmarks/bench_clipstyler.py --device cuda`` (see benchmarks/_compiled.py).
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode
from torchvision import transforms as T

from _compiled import peak_rss_per_step
from bench_gatys import matmul_rate  # benchmarks/ is sys.path[0]

from stylecore.clip_guidance import ClipGuide, load_clip, text_embedding
from stylecore.clipstyler.training import AUTHORS_CODE, ClipStylerHyperParams, ClipStylerLoss, StyleNet, with_overrides
from stylecore.nets.vgg import VGGFeatures, vgg19_features

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
TEXT = "oil painting of flowers"


class OfficialStep:
    """One iteration of the official loop (see the module docstring), written from reading train_CLIPstyler.py."""

    def __init__(self, net: torch.nn.Module, content: torch.Tensor, clip: ClipGuide, vgg_full: VGGFeatures, hp: ClipStylerHyperParams, clip_trainable: bool) -> None:
        self.net, self.content, self.clip, self.hp, self.clip_trainable = net, content, clip, hp, clip_trainable
        self.vgg = vgg_full.body  # all 37 modules of torchvision's vgg19().features, in-place ReLU
        self.opt = torch.optim.Adam(net.parameters(), lr=hp.lr)
        dev = content.device
        self.im_mean, self.im_std = torch.tensor(IMAGENET_MEAN, device=dev).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD, device=dev).view(1, 3, 1, 1)
        self.cropper = T.RandomCrop(hp.patch_size)
        self.augment = T.Compose([T.RandomPerspective(fill=0, p=1, distortion_scale=0.5), T.Resize(clip.image_size)])  # Resize(224) for ViT-B/32
        with torch.no_grad():
            self.content_feats = self.features(content)
            src = self.encode(content)
            self.source = src / src.norm(dim=-1, keepdim=True)
            # unnormalised template mean, normalised (the official ensembling); text_embedding computes exactly that
            self.text_direction = (text_embedding(clip, TEXT) - text_embedding(clip, hp.source_text)).unsqueeze(0)

    def features(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        x, out = (image - self.im_mean) / self.im_std, {}
        for i, layer in enumerate(self.vgg):  # every module, as utils.get_features
            x = layer(x)
            if i in (21, 31):
                out[i] = x
        return out

    def encode(self, images: torch.Tensor) -> torch.Tensor:  # clip_normalize + encode_image, unnormalised output
        x = F.interpolate(images, size=self.clip.image_size, mode="bicubic")
        return self.clip.model.encode_image((x - self.clip.mean) / self.clip.std)

    def __call__(self) -> float:
        hp = self.hp
        self.clip.model.requires_grad_(self.clip_trainable)
        target = self.net(self.content)
        feats = self.features(target)
        content_loss = sum(torch.mean((feats[i] - self.content_feats[i]) ** 2) for i in (21, 31))
        crops = torch.cat([self.augment(self.cropper(target)) for _ in range(hp.n_patches)])
        emb = self.encode(crops)
        emb = emb / emb.clone().norm(dim=-1, keepdim=True)
        img_dir = emb - self.source
        img_dir = img_dir / img_dir.clone().norm(dim=-1, keepdim=True)
        text_dir = self.text_direction.repeat(emb.shape[0], 1)
        text_dir = text_dir / text_dir.norm(dim=-1, keepdim=True)
        per_patch = 1 - torch.cosine_similarity(img_dir, text_dir, dim=1)
        per_patch[per_patch < hp.tau] = 0
        glob = self.encode(target)
        glob = glob / glob.clone().norm(dim=-1, keepdim=True)
        glob_dir = glob - self.source
        glob_dir = glob_dir / glob_dir.clone().norm(dim=-1, keepdim=True)
        loss_glob = (1 - torch.cosine_similarity(glob_dir, text_dir, dim=1)).mean()
        d = (target[..., :, :-1] - target[..., :, 1:], target[..., :-1, :] - target[..., 1:, :], target[..., 1:, :-1] - target[..., :-1, 1:], target[..., :-1, :-1] - target[..., 1:, 1:])
        tv = sum(torch.norm(x) for x in d)
        total = hp.lambda_patch * per_patch.mean() + hp.lambda_c * content_loss + hp.lambda_tv * tv + hp.lambda_dir * loss_glob
        self.opt.zero_grad()
        total.backward()
        self.opt.step()
        self.clip.model.requires_grad_(False)
        return total.item()


class ProjectStep:
    """One iteration of :func:`stylecore.clipstyler.training.train_clipstyler` (the body of ``fit``)."""

    def __init__(self, net: torch.nn.Module, content: torch.Tensor, loss_fn: ClipStylerLoss) -> None:
        self.net, self.content, self.loss_fn = net, content, loss_fn
        self.opt = torch.optim.Adam(net.parameters(), lr=loss_fn.hp.lr)

    def __call__(self) -> float:
        terms = self.loss_fn(self.net(self.content))
        total = torch.stack(list(terms.values())).sum()
        self.opt.zero_grad(set_to_none=True)
        total.backward()
        self.opt.step()
        return total.item()


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize()


def timed(fn: Callable[[], object], dev: torch.device) -> float:
    _sync(dev)
    t0 = time.perf_counter()
    fn()
    _sync(dev)
    return time.perf_counter() - t0


def profile_project(net: torch.nn.Module, content: torch.Tensor, loss_fn: ClipStylerLoss, dev: torch.device, repeats: int) -> dict[str, float]:
    """Median seconds of each part of stylecore's step, forward + backward each, timed in isolation.

    The step itself encodes the crops and the whole output in one CLIP call ("CLIP crops+global, one call");
    the two separate rows show what that call replaces.
    """
    from stylecore.clip_guidance import augment_patches, random_patches

    hp, clip = loss_fn.hp, loss_fn.clip
    out = net(content).detach().requires_grad_(True)
    crops_raw = random_patches(out, hp.n_patches, hp.patch_size).detach().requires_grad_(True)
    crops_aug = augment_patches(crops_raw).detach().requires_grad_(True)

    def unet() -> None:
        y = net(content)
        y.backward(torch.ones_like(y))

    def vgg() -> None:
        x = out.detach().requires_grad_(True)
        f = loss_fn.vgg(x)
        sum(v.square().mean() for v in f.values()).backward()

    def augmentation() -> None:
        x = out.detach().requires_grad_(True)
        a = augment_patches(random_patches(x, hp.n_patches, hp.patch_size), "perspective")
        a.backward(torch.ones_like(a))

    def clip_crops() -> None:
        x = crops_aug.detach().requires_grad_(True)
        clip.encode_images(x).sum().backward()

    def clip_global() -> None:
        x = out.detach().requires_grad_(True)
        clip.encode_images(x).sum().backward()

    def clip_one_call() -> None:  # what the step runs: crops and whole output together
        x, y = crops_aug.detach().requires_grad_(True), out.detach().requires_grad_(True)
        torch.cat(clip.encode_image_groups(x, y)).sum().backward()

    def whole() -> None:
        y = net(content)
        sum(loss_fn(y).values()).backward()

    parts = {"U-Net fwd+bwd": unet, "VGG fwd+bwd": vgg, "crop+augment fwd+bwd": augmentation, "CLIP crops fwd+bwd": clip_crops, "CLIP global fwd+bwd": clip_global,
             "CLIP crops+global, one call": clip_one_call, "whole step": whole}  # fmt: skip
    times: dict[str, list[float]] = {k: [] for k in parts}
    for fn in parts.values():
        fn()  # warm-up
    for _ in range(repeats):
        for k, fn in parts.items():
            times[k].append(timed(fn, dev))
    net.zero_grad(set_to_none=True)
    return {k: statistics.median(v) for k, v in times.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=512, help="content image side in pixels (paper: 512)")
    p.add_argument("--crops", type=int, default=64, help="n, crops per step (paper: 64)")
    p.add_argument("--patch", type=int, default=128, help="crop side (paper: 128)")
    p.add_argument("--rounds", type=int, default=3, help="timed rounds (each: one step of every row), after one warm-up round; 0 with --profile: the profile only")
    p.add_argument("--clip", default="ViT-B-32", help="open_clip architecture (paper: ViT-B-32)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--no-frozen-row", action="store_true", help="skip the official structure with CLIP frozen")
    p.add_argument("--no-compile", action="store_true", help="skip the compiled stylecore row")
    p.add_argument("--profile", action="store_true", help="then time each part of stylecore's step")
    args = p.parse_args()

    dev = torch.device(args.device)
    torch.manual_seed(0)
    hp = with_overrides(AUTHORS_CODE, n_patches=args.crops, patch_size=args.patch)
    clip = load_clip(args.clip, weights="random", device=dev)
    vgg = vgg19_features(hp.content_layers, pooling=hp.pooling, weights="random").to(dev)
    vgg_full = vgg19_features(hp.content_layers, pooling=hp.pooling, weights="random", truncate=False).to(dev)  # same weights, all 37 modules
    content = torch.rand(1, 3, args.size, args.size, device=dev)
    net0 = StyleNet().to(dev)
    rows: dict[str, Callable[[], float]] = {"official structure": OfficialStep(copy.deepcopy(net0), content, clip, vgg_full, hp, clip_trainable=True)}
    if not args.no_frozen_row:
        rows["official structure, CLIP frozen"] = OfficialStep(copy.deepcopy(net0), content, clip, vgg_full, hp, clip_trainable=False)
    loss_fn = ClipStylerLoss(clip, vgg, content, TEXT, hp)
    rows["stylecore"] = ProjectStep(copy.deepcopy(net0), content, loss_fn)
    if not args.no_compile:
        loss_c = ClipStylerLoss(clip, vgg, content, TEXT, hp)
        loss_c.vgg = torch.compile(vgg, dynamic=False)  # type: ignore[assignment]
        loss_c.clip = copy.copy(clip)
        loss_c.clip.encode_images = torch.compile(clip.encode_images, dynamic=False)  # type: ignore[method-assign]
        step_c = ProjectStep(copy.deepcopy(net0), content, loss_c)
        step_c.net = torch.compile(step_c.net, dynamic=False)  # the same parameters, which Adam holds
        rows["stylecore, compiled"] = step_c

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"CLIPstyler step: {args.size} px, {args.crops} crops of {args.patch} px, CLIP {args.clip} and VGG19 (random weights), device {args.device}, "
          f"{torch.get_num_threads()} threads, {args.rounds} paired rounds, load average {load:.2f} at start")  # fmt: skip
    if args.rounds == 0:  # --rounds 0 --profile: the profile alone
        rows = {"stylecore": rows["stylecore"]}
    times: dict[str, list[float]] = {k: [] for k in rows}
    warm: dict[str, float] = {}
    for r in range(args.rounds + 1 if args.rounds else 0):  # round 0 warms up (allocator, kernels; the compile) and is not timed
        for k, step in rows.items():
            t = timed(step, dev)
            if r:
                times[k].append(t)
            else:
                warm[k] = t
    proj = times["stylecore"]
    if args.rounds:
        print_table(times, proj)
        if "stylecore, compiled" in times:
            eager_s, comp_s = statistics.median(proj), statistics.median(times["stylecore, compiled"])
            compile_s = max(warm["stylecore, compiled"] - comp_s, 0.0)
            be = compile_s / (eager_s - comp_s) if eager_s > comp_s else float("inf")
            rss_e, rss_c = peak_rss_per_step(rows["stylecore"]), peak_rss_per_step(rows["stylecore, compiled"])
            print(f"  compiled: compile {compile_s:.1f} s, break-even {be:.0f} steps (paper run: 200), "
                  f"peak RSS per step eager {rss_e:.0f} MiB / compiled {rss_c:.0f} MiB")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"  load average {load:.2f} at end")
    if args.rounds:
        with FlopCounterMode(display=False) as counter:  # matmul/conv/attention FLOPs of one step, forward + backward
            rows["stylecore"]()
        flops, rate = counter.get_total_flops(), matmul_rate()
        print(f"FLOP bound: {flops / 1e9:.0f} GFLOP per stylecore step at this machine's matmul rate {rate / 1e9:.0f} GFLOP/s "
              f"(bench_gatys.matmul_rate) = {flops / rate:.2f} s; stylecore / bound = {statistics.median(proj) / (flops / rate):.2f}")
    if args.profile:
        print("where stylecore's step goes (each part forward + backward, timed alone, median):")
        for k, v in profile_project(rows["stylecore"].net, content, loss_fn, dev, max(args.rounds, 2)).items():
            print(f"  {k:28s} {v:8.3f} s")


def print_table(times: dict[str, list[float]], proj: list[float]) -> None:
    print(f"  {'':34s} {'s/step (median)':>16s} {'min':>8s}   ratio to stylecore (median of rounds)")
    for k, ts in times.items():
        ratio = statistics.median(a / b for a, b in zip(ts, proj))
        print(f"  {k:34s} {statistics.median(ts):16.3f} {min(ts):8.3f}   {ratio:.2f}×")


if __name__ == "__main__":
    main()
