"""Deep Photo Style Transfer costs: matting Laplacian build, one step with and without L_m, the post-process.

    OMP_NUM_THREADS=2 python benchmarks/bench_matting.py --size 512

Prints seconds; the numbers go in notebook 02's closing note. Uses the content photo of the
paper's pair 1 if the sample data are available, else a random image (same sparsity pattern).
"""

from __future__ import annotations

import argparse
import time
import warnings

import torch

from stylecore.deep_photo import loss as dpst, matting
from stylecore.deep_photo.local_affine import smooth_local_affine
from stylecore.deep_photo.masks import no_masks
from stylecore.nets.vgg import vgg19_features


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512, help="longest side in pixels")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    try:
        content = dpst.load_input("dpst_in1", args.size)
        style = dpst.load_input("dpst_tar1", args.size)
        source = "dpst_in1 / dpst_tar1"
    except Exception as exc:  # noqa: BLE001 - offline without sample data: a random pair times the same
        content, style = torch.rand(1, 3, args.size * 2 // 3, args.size), torch.rand(1, 3, args.size * 2 // 3, args.size)
        source = f"random images ({type(exc).__name__})"
    content, style = content.to(args.device), style.to(args.device)
    h, w = content.shape[-2:]
    print(f"images: {source}, {h}x{w}; torch threads {torch.get_num_threads()}; device {args.device}")

    build = best_of(lambda: matting.matting_laplacian(content), args.repeats)
    lap = matting.matting_laplacian(content)
    print(f"matting Laplacian build: {build:.3f} s ({lap.nnz:,} non-zeros, {lap.data.nbytes / 2**20:.0f} MiB values)")

    x = content.clone().requires_grad_(True)
    lm = best_of(lambda: matting.photorealism_loss(x, lap).backward(), args.repeats)
    print(f"L_m forward+backward alone: {lm * 1000:.1f} ms")

    hp = dpst.PAPER
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        extractor = vgg19_features(hp.layers, pooling=hp.pooling, weights="random").to(args.device)
    masks = no_masks(content, style)
    style_like = (0.7 * content.flip(1) + 0.1 * torch.rand_like(content)).clamp(0, 1)  # any output of the same size
    for lam in (0.0, 1.0):
        loss = dpst.DeepPhotoLoss(extractor, hp, content, style, masks, lap, lam)
        step = best_of(lambda: sum(loss(x).values()).backward(), args.repeats)
        print(f"one step (VGG content+style{' + λ L_m' if lam else ''}): {step:.3f} s")
    print(f"estimated peak memory at this size: {dpst.estimate_memory_mb(h, w):.0f} MiB")
    for radius, edge, source in ((7, 0.05, "deepmatting_seg.lua defaults"), (15, 0.01, "gen_all.py")):
        post = best_of(lambda: smooth_local_affine(style_like, content, filter_radius=radius, edge_sigma=edge), args.repeats)
        print(f"post-process SmoothLocalAffine, r={radius} ({source}): {post:.3f} s")


if __name__ == "__main__":
    main()
