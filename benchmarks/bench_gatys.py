"""Seconds per Gatys L-BFGS evaluation: a reference structure, stylecore, their ratio and the FLOP bound.

    python benchmarks/bench_gatys.py [--sizes 256 512] [--repeats 5] [--layers tutorial paper] [--threads 2] [--profile]

Reference: the structure of PyTorch's "Neural Transfer" tutorial, written out here: an
``nn.Sequential`` of VGG19 modules with loss modules inserted after the chosen layers (each
stores its loss on ``forward``), Grams by ``torch.mm`` of the flattened (C, HW) features, MSE
losses, the network cut after the last loss module. stylecore: ``gatys.GatysLoss`` on
``vgg.vgg19_features`` (lean Gram autograd function). Both evaluate the same random VGG19 on
the same images with the same layers and pooling; one evaluation = forward + backward to the
pixels, what one L-BFGS iteration costs. Reported: median seconds over ``--repeats`` paired
rounds (reference and stylecore alternate, so load drifts hit both), their ratio, and the
FLOP bound: convolution forward + input-gradient and Gram forward + backward FLOPs of the layers
run, divided by this machine's matmul rate (measured here on a 1024×4096×1024 sgemm).

Layer sets: ``tutorial`` (style conv1_1, conv1_2, conv2_1, conv2_2, conv3_1 — the tutorial's
conv_1…conv_5 — content conv2_2, its conv_4; max pooling) and ``paper`` (Gatys et al. 2016:
style relu1_1…relu5_1, content relu4_2; average pooling).
Weights are random: the architecture, not the values, sets the cost.

Compiled column: stylecore's loss closure (VGG + loss, backward through AOTAutograd) under
``torch.compile`` (what ``optimize_pixels(compile=True)`` runs), with the compile time, the
break-even evaluation count (compile s / saving per evaluation) and the peak RSS of one evaluation
eager vs compiled. GPU command (not run here, no GPU): see benchmarks/_compiled.py.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from _compiled import compiled_timing, peak_rss_per_step

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from stylecore import gatys
from stylecore.nets import vgg

LAYER_SETS = {
    "tutorial": {"style": ("conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1"), "content": ("conv2_2",), "pooling": "max"},
    "paper": {"style": ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"), "content": ("relu4_2",), "pooling": "avg"},
}


class _ContentTerm(nn.Module):
    def __init__(self, target: torch.Tensor) -> None:
        super().__init__()
        self.target, self.loss = target.detach(), torch.zeros(())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.loss = F.mse_loss(x, self.target)
        return x


class _Normalize(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return vgg.imagenet_normalize(x)


def _mm_gram(x: torch.Tensor) -> torch.Tensor:
    b, c, h, w = x.shape
    f = x.view(b * c, h * w)
    return torch.mm(f, f.t()) / (b * c * h * w)


class _StyleTerm(nn.Module):
    def __init__(self, target_features: torch.Tensor) -> None:
        super().__init__()
        self.target, self.loss = _mm_gram(target_features).detach(), torch.zeros(())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.loss = F.mse_loss(_mm_gram(x), self.target)
        return x


def reference_model(body: nn.Sequential, layers: dict, content: torch.Tensor, style: torch.Tensor) -> tuple[nn.Sequential, list, list]:
    """The tutorial's structure on ``body`` (stylecore's module list): loss modules after the named layers."""
    model = nn.Sequential(_Normalize())  # the tutorial's Normalization module: ImageNet mean/std, as stylecore's extractor
    content_terms, style_terms = [], []
    last = max(vgg.VGG19_LAYERS.index(n) for n in (*layers["style"], *layers["content"]))
    for name, module in zip(vgg.VGG19_LAYERS[: last + 1], body):
        model.append(nn.ReLU(inplace=False) if isinstance(module, nn.ReLU) else module)
        if name in layers["content"]:
            term = _ContentTerm(model(content))
            model.append(term)
            content_terms.append(term)
        if name in layers["style"]:
            term = _StyleTerm(model(style))
            model.append(term)
            style_terms.append(term)
    return model, content_terms, style_terms


def conv_gram_flops(layers: dict, size: int) -> float:
    """Convolution forward + input gradient, Gram forward + backward FLOPs of one evaluation at size × size."""
    flops, h, c_in = 0.0, size, 3
    last = max(vgg.VGG19_LAYERS.index(n) for n in (*layers["style"], *layers["content"]))
    cfg = torchvision.models.vgg.cfgs["E"]  # VGG19: channels per conv, "M" per pooling
    names = [n for n in vgg.VGG19_LAYERS if n.startswith(("conv", "pool"))]
    for name, c in zip(names, cfg):
        if vgg.VGG19_LAYERS.index(name) > last:
            break
        if c == "M":
            h //= 2
            continue
        flops += 2 * (2 * c_in * c * 9 * h * h)  # forward and input gradient
        c_in = c
        for s in layers["style"]:
            if s[4:] == name[4:]:  # conv<b>_<i> or relu<b>_<i> of this convolution
                flops += 2 * (2 * c * c * h * h)  # Gram forward and backward
    return flops


def matmul_rate(repeats: int = 5) -> float:
    a, b = torch.randn(1024, 4096), torch.randn(4096, 1024)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * 1024 * 4096 * 1024 / best


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def stylecore_problem(layer_set: str, size: int) -> tuple[gatys.GatysLoss, torch.Tensor, torch.Tensor]:
    """stylecore's loss on the random VGG19 with the layer set, and the content and style images (random, seeded)."""
    layers = LAYER_SETS[layer_set]
    hp = gatys.PAPER.with_(content_layers={n: 1.0 for n in layers["content"]}, style_layers={n: 1.0 for n in layers["style"]},
                           pooling=layers["pooling"])
    ex = vgg.vgg19_features(hp.layers, hp.pooling, weights="random")
    g = torch.Generator().manual_seed(0)
    content, style = torch.rand(1, 3, size, size, generator=g), torch.rand(1, 3, size, size, generator=g)
    return gatys.GatysLoss(ex, hp, content, style), content, style


def stylecore_eval(loss: gatys.GatysLoss, x: torch.Tensor) -> Callable[[], None]:
    """One evaluation of ``loss`` at ``x`` (a leaf with requires_grad): forward and backward to the pixels."""

    def run() -> None:
        x.grad = None
        torch.stack(list(loss(x).values())).sum().backward()

    return run


def measure(layer_set: str, size: int, repeats: int, compiled: bool = True) -> dict[str, float]:
    layers = LAYER_SETS[layer_set]
    loss, content, style = stylecore_problem(layer_set, size)
    with torch.no_grad():
        model, c_terms, s_terms = reference_model(loss.extractor.body, layers, content, style)
    x_ref = content.clone().requires_grad_(True)
    ours_eval = stylecore_eval(loss, content.clone().requires_grad_(True))

    def ref_eval() -> None:
        x_ref.grad = None
        model(x_ref)
        (sum(t.loss for t in c_terms) + 1e3 * sum(t.loss for t in s_terms)).backward()

    for fn in (ref_eval, ours_eval, ref_eval, ours_eval):  # warm-up
        fn()
    ref, ours = [], []
    for _ in range(repeats):
        ref.append(_timed(ref_eval))
        ours.append(_timed(ours_eval))
    out = {"reference": statistics.median(ref), "stylecore": statistics.median(ours), "flops": conv_gram_flops(layers, size),
           "rss_eager": peak_rss_per_step(ours_eval)}
    if compiled:
        x_c = content.clone().requires_grad_(True)
        total = torch.compile(lambda img: torch.stack(list(loss(img).values())).sum(), dynamic=False)

        def compiled_eval() -> None:
            x_c.grad = None
            total(x_c).backward()

        out.update(compiled_timing(compiled_eval, repeats, out["stylecore"]))
    return out


def profile(layer_set: str, size: int, repeats: int = 3, rows: int = 14) -> None:
    """Where stylecore's evaluation goes: torch.profiler's operators by self CPU time over ``repeats`` evaluations."""
    from torch.profiler import ProfilerActivity, profile as torch_profile

    loss, content, _ = stylecore_problem(layer_set, size)
    ours_eval = stylecore_eval(loss, content.clone().requires_grad_(True))
    ours_eval()
    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(repeats):
            ours_eval()
    print(f"\nstylecore, {layer_set} layers, {size} px: operators by self CPU time over {repeats} evaluations")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows, max_name_column_width=40))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    ap.add_argument("--layers", nargs="+", default=["tutorial", "paper"], choices=list(LAYER_SETS))
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--no-compile", action="store_true", help="skip the compiled column")
    ap.add_argument("--profile", action="store_true", help="then profile stylecore's evaluation at each layer set and size")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rate = matmul_rate()
    print(f"torch {torch.__version__}, {args.threads} threads; matmul rate {rate / 1e9:.0f} GFLOP/s (1024×4096×1024 sgemm, best of 5)")
    print("| layers | size | reference s/eval | stylecore s/eval | reference / stylecore | FLOP bound s | stylecore / bound "
          "| compiled s/eval | reference / compiled | compile s | break-even evals | peak RSS MiB eager / compiled |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for layer_set in args.layers:
        for size in args.sizes:
            r = measure(layer_set, size, args.repeats, not args.no_compile)
            bound = r["flops"] / rate
            comp = (f"{r['compiled']:.3f} | {r['reference'] / r['compiled']:.2f} | {r['compile_s']:.1f} | {r['break_even']:.0f} | "
                    f"{r['rss_eager']:.0f} / {r['rss']:.0f}") if "compiled" in r else f"– | – | – | – | {r['rss_eager']:.0f} / –"
            print(f"| {layer_set} | {size} | {r['reference']:.3f} | {r['stylecore']:.3f} | {r['reference'] / r['stylecore']:.2f} | "
                  f"{bound:.3f} | {r['stylecore'] / bound:.2f} | {comp} |", flush=True)
    if args.profile:
        for layer_set in args.layers:
            for size in args.sizes:
                profile(layer_set, size)


if __name__ == "__main__":
    main()
