"""Time to result: seconds to reach the paper preset's final loss, the paper's way vs coarse-to-fine.

    STYLECORE_DATA_DIR=../shared/data python benchmarks/bench_time_to_result.py [--size 512] [--iterations 150]

The number a user feels. Gatys et al. 2016 optimise the output at full size from white noise
(``gatys.PAPER``: L-BFGS, noise start); that run's loss at its last iterate (``--iterations``;
unclamped, as every iterate compared here) is the target. ``gatys.coarse_to_fine`` (not the paper's method: a documented speed-up) optimises
at ``--coarse`` sizes first, each stage starting from the previous result upsampled, then runs
at full size until the paper's loss at full size reaches the target. Printed: seconds and
full-size evaluations to the target for both, and their ratio. Content and style are Tübingen
and The Starry Night from the data folder; the feature space is the preset's (its file when
present, else random weights normalised on the sample images, as notebook 01 offline).
"""

from __future__ import annotations

import argparse

import torch

from stylecore import gatys, vgg
from stylecore.data import load_sample
from stylecore.optim import optimize_pixels


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=512, help="output's longest side (paper: 512)")
    ap.add_argument("--iterations", type=int, default=150, help="L-BFGS iterations of the paper-way run; its final loss is the target")
    ap.add_argument("--coarse", type=int, nargs="+", default=[128, 256], help="coarse stage sizes (ascending, below --size)")
    ap.add_argument("--coarse-steps", type=int, nargs="+", default=[40, 20], help="L-BFGS iterations per coarse stage (chosen by measurement; see the README)")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    hp = gatys.PAPER
    ex = vgg.vgg19_features(hp.layers, hp.pooling, weights="auto", seed=args.seed, variant=hp.vgg_variant)
    if not ex.weights_info.pretrained:  # random weights: the paper's normalisation, as notebook 01 does offline
        ex = vgg.vgg19_features(hp.layers, hp.pooling, weights="random", seed=args.seed, variant=hp.vgg_variant, normalize=True)
    content, style = load_sample("tubingen", args.size), load_sample("starry_night", args.size)
    print(f"{args.threads} threads; {tuple(content.shape[-2:])} px; feature space: {ex.weights_info.label}")

    paper = optimize_pixels(gatys.initial_image("noise", content, style, args.seed), gatys.GatysLoss(ex, hp, content, style),
                            args.iterations, progress=True, desc="paper's way", seed=args.seed)
    # history: the loss at each iterate (unclamped), then one entry for the returned image clamped to [0, 1]; both runs
    # are compared on iterates, so the target is the last iterate's loss, not the clamped image's (which is higher).
    iterates = paper.history["total"][:-1]
    target = iterates[-1]
    hit = next(i for i, v in enumerate(iterates) if v <= target)
    t_paper = paper.times[hit]
    sizes = [*args.coarse, max(content.shape[-2:])]
    stages = gatys.coarse_to_fine(ex, hp, content, style, sizes, [*args.coarse_steps, 10 * args.iterations], init="noise",
                                  seed=args.seed, target_loss=target)
    final = stages[-1]
    reached = next((i for i, v in enumerate(final.history["total"][:-1]) if v <= target), None)
    coarse_s = sum(r.seconds for r in stages[:-1])
    print("| schedule | full-size evaluations | seconds to the target loss | loss reached |")
    print("|---|---|---|---|")
    print(f"| paper: {args.size} px from noise, {args.iterations} L-BFGS iterations | {hit + 1} | {t_paper:.1f} | {target:.4g} |")
    if reached is None:
        print(f"| coarse-to-fine {sizes} | {final.steps} | did not reach it ({coarse_s + final.seconds:.1f} s) | {min(final.history['total']):.4g} |")
        return
    t_c2f = coarse_s + final.times[reached]
    print(f"| coarse-to-fine {sizes}, steps {[*args.coarse_steps]} + until the target | {reached + 1} | {t_c2f:.1f} "
          f"(coarse stages {coarse_s:.1f}) | {final.history['total'][reached]:.4g} |")
    print(f"time to result, paper / coarse-to-fine: {t_paper / t_c2f:.2f}×")


if __name__ == "__main__":
    main()
