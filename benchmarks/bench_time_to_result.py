"""Time to result: seconds to reach the paper preset's final loss, the paper's way vs coarse-to-fine.

    STYLECORE_DATA_DIR=../shared/data python benchmarks/bench_time_to_result.py [--size 384] [--iterations 80] [--compile both|eager|compiled]
    paper's size: --size 512 --iterations 150 (≈ 15 min on 2 cores with both columns)

The number a user feels. Gatys et al. 2016 optimise the output at full size from white noise
(``gatys.PAPER``: L-BFGS, noise start); that run's loss at its last iterate (``--iterations``;
unclamped, as every iterate compared here) is the target. ``gatys.coarse_to_fine`` (not the paper's method: a documented speed-up) optimises
at ``--coarse`` sizes first, each stage starting from the previous result upsampled, then runs
at full size until the paper's loss at full size reaches the target. Printed: seconds and
full-size evaluations to the target for both, and their ratio. Content and style are Tübingen
and The Starry Night from the data folder; the feature space is the preset's (its file when
present, else random weights normalised on the sample images, as notebook 01 offline).

Compiled rows (``--compile both``, the default): the same two schedules with ``compile=True`` for the
paper's way and ``compile="auto"`` for coarse-to-fine (the coarse stages are too short to pay back a
compile and stay eager; the full-size stage compiles); the seconds include the compile, whose
time is printed beside them. GPU command (not run here, no GPU): see benchmarks/_compiled.py.
"""

from __future__ import annotations

import argparse
import time

import torch

from stylecore import gatys
from stylecore.nets import vgg
from stylecore.data import load_sample
from stylecore.optim import optimize_pixels


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=384, help="output's longest side (paper: 512; 384 keeps the default run near 5 min)")
    ap.add_argument("--iterations", type=int, default=80, help="L-BFGS iterations of the paper-way run; its final loss is the target (the README's run: 150)")
    ap.add_argument("--coarse", type=int, nargs="+", default=[128, 256], help="coarse stage sizes (ascending, below --size)")
    ap.add_argument("--coarse-steps", type=int, nargs="+", default=[40, 20], help="L-BFGS iterations per coarse stage (chosen by measurement; see the README)")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--compile", choices=["both", "eager", "compiled"], default="both", help="which columns to run")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    hp = gatys.PAPER
    ex = vgg.vgg19_features(hp.layers, hp.pooling, weights="auto", seed=args.seed, variant=hp.vgg_variant)
    if not ex.weights_info.pretrained:  # random weights: the paper's normalisation, as notebook 01 does offline
        ex = vgg.vgg19_features(hp.layers, hp.pooling, weights="random", seed=args.seed, variant=hp.vgg_variant, normalize=True)
    content, style = load_sample("tubingen", args.size), load_sample("starry_night", args.size)
    print(f"{args.threads} threads; {tuple(content.shape[-2:])} px; feature space: {ex.weights_info.label}")

    modes = {"both": [False, True], "eager": [False], "compiled": [True]}[args.compile]
    print("| schedule | compile | full-size evaluations | seconds to the target loss | loss reached |")
    print("|---|---|---|---|---|")
    paper_s: dict[bool, float] = {}
    for compiled in modes:
        label = "on" if compiled else "off"
        t0 = time.perf_counter()
        paper = optimize_pixels(gatys.initial_image("noise", content, style, args.seed), gatys.GatysLoss(ex, hp, content, style),
                                args.iterations, progress=True, desc=f"paper's way, compile {label}", seed=args.seed, compile=compiled)
        first_eval = paper.times[0]  # the first evaluation holds the compile when compiling
        # history: the loss at each iterate (unclamped), then one entry for the returned image clamped to [0, 1]; both runs
        # are compared on iterates, so the target is the last iterate's loss, not the clamped image's (which is higher).
        iterates = paper.history["total"][:-1]
        target = iterates[-1] if not paper_s else target
        hit = next((i for i, v in enumerate(iterates) if v <= target), None)
        row = f"| paper: {args.size} px from noise, {args.iterations} L-BFGS iterations | {label} (first evaluation {first_eval:.1f} s) "
        if hit is None:  # the compiled run's trajectory differs by float rounding, which L-BFGS can amplify
            print(row + f"| {len(iterates)} | did not reach the eager target ({paper.seconds:.1f} s) | {min(iterates):.4g} |", flush=True)
        else:
            paper_s[compiled] = paper.times[hit]
            print(row + f"| {hit + 1} | {paper_s[compiled]:.1f} | {iterates[hit]:.4g} |", flush=True)
        sizes = [*args.coarse, max(content.shape[-2:])]
        stages = gatys.coarse_to_fine(ex, hp, content, style, sizes, [*args.coarse_steps, 10 * args.iterations], init="noise",
                                      seed=args.seed, target_loss=target, compile="auto" if compiled else False)
        final = stages[-1]
        reached = next((i for i, v in enumerate(final.history["total"][:-1]) if v <= target), None)
        coarse_s = sum(r.seconds for r in stages[:-1])
        if reached is None:
            print(f"| coarse-to-fine {sizes} | {label} | {final.steps} | did not reach it ({coarse_s + final.seconds:.1f} s) | {min(final.history['total']):.4g} |")
            continue
        t_c2f = coarse_s + final.times[reached]
        print(f"| coarse-to-fine {sizes}, steps {[*args.coarse_steps]} + until the target | {'auto' if compiled else 'off'} | {reached + 1} | {t_c2f:.1f} "
              f"(coarse stages {coarse_s:.1f}) | {final.history['total'][reached]:.4g} |")
        print(f"time to result, paper eager / coarse-to-fine compile {'auto' if compiled else 'off'}: {paper_s.get(modes[0], float('nan')) / t_c2f:.2f}× "
              f"(this pass {time.perf_counter() - t0:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
