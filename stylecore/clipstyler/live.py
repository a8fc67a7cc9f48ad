"""Notebook 05's plumbing: this run's hyper-parameters and content image, the live view, the ablation evidence, verdicts.

The notebook keeps the ideas (the equations, the loss, the training calls); this module keeps what only connects
them: resolving a preset at the run's size, loading the content image as the authors do, looking cached runs up
for the live view (section 9 of ``notebooks/05_kwon_2022_clipstyler.ipynb``), the "acts as defined" evidence of
each Fig. 6 ablation (section 8) and the printed verdict that ends each computed claim.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, MutableMapping, Sequence
from typing import Any

import torch

from .. import data
from .training import ABLATIONS, Ablation, ClipStylerHyperParams, authors_postprocess, crop_to_multiple, resize_square, with_overrides
from ..images import load_image, resize_longest

__all__ = [
    "CacheKey",
    "ablation_evidence",
    "cache_key",
    "live_controls",
    "load_content",
    "nearest_cached",
    "render_cached",
    "retrain_button",
    "shown",
    "verdict",
    "with_lambdas",
]

#: (ablation letter, τ, n, λ_d, λ_p, λ_c): what identifies one cached run of the live view.
CacheKey = tuple[str, float, int, float, float, float]


def with_lambdas(hp: ClipStylerHyperParams, lambda_dir: float = -1.0, lambda_patch: float = -1.0, lambda_c: float = -1.0,
                 lambda_tv: float = -1.0) -> ClipStylerHyperParams:  # fmt: skip
    """``hp`` with the λs of Eq. 4 (Kwon & Ye 2022, Sec. 3.2) that are ≥ 0 replaced; a negative value keeps the preset's."""
    given = {"lambda_dir": lambda_dir, "lambda_patch": lambda_patch, "lambda_c": lambda_c, "lambda_tv": lambda_tv}
    return with_overrides(hp, **{k: float(v) for k, v in given.items() if v >= 0})


def load_content(name: str, size: int, how: str = "square", data_dir: str | None = None, device: torch.device | str = "cpu") -> torch.Tensor:
    """A sample name or an image path -> (1, 3, H, W) in [0, 1].

    ``how="square"``: resized to ``size`` × ``size`` ignoring the aspect (the official code's ``resize((512, 512))``,
    Sec. 4.1 "512×512 for all content images"); ``"longest"``: the longest side = ``size``, cropped to multiples of 8
    (the U-Net halves the image three times).
    """
    if how not in ("square", "longest"):
        raise ValueError(f"resize must be 'square' or 'longest', got {how!r}")
    if name in data.list_samples():
        image = data.load_sample(name, None if how == "square" else size, data_dir=data_dir)
    else:
        image = load_image(name) if how == "square" else resize_longest(load_image(name), size)
    image = resize_square(image, size) if how == "square" else crop_to_multiple(image, 8)
    return image.to(device)


def shown(image: torch.Tensor, contrast: float) -> torch.Tensor:
    """What the authors' script saves: clamp, ×``contrast``, min-max rescale; ``contrast`` 1 shows the raw output."""
    return authors_postprocess(image, contrast, minmax=contrast != 1)


# --- the live view (notebook section 9): cached runs, looked up, never recomputed on a slider move -----------------
def cache_key(setting: str, hp: ClipStylerHyperParams) -> CacheKey:
    """The cache key of a run of ablation ``setting`` with ``hp``'s τ, n and λ_d, λ_p, λ_c."""
    return (setting, hp.tau, hp.n_patches, hp.lambda_dir, hp.lambda_patch, hp.lambda_c)


def nearest_cached(cache: Mapping[CacheKey, Any], key: CacheKey) -> CacheKey:
    """``key`` itself when cached, else the closest cached key: same setting first, then τ, then n, then the λs."""
    if not cache:
        raise ValueError("the live view has no cached run: include 'widgets' or 'ablation' in experiments")
    if key in cache:
        return key
    setting, tau, n, ld, lp, lc = key
    return min(cache, key=lambda k: (k[0] != setting, abs(k[1] - tau), abs(k[2] - n), abs(k[3] - ld) + abs(k[4] - lp) + abs(k[5] - lc)))


def render_cached(cache: Mapping[CacheKey, torch.Tensor], key: CacheKey, content: torch.Tensor, weights_label: str) -> Any:
    """A figure of ``content`` beside the cached run for ``key`` (or the nearest one, labelled as such)."""
    from .. import plots

    hit = nearest_cached(cache, key)
    setting, tau, n = key[:3]
    note = "" if hit == key else f"\n(nearest cached: {ABLATIONS[hit[0]].title}, τ={hit[1]:g}, n={hit[2]}; press Retrain for these settings)"
    return plots.show_images([content, cache[hit]], ["content", f"{ABLATIONS[setting].title}, τ={tau:g}, n={n}{note}"], weights_label=weights_label)


def live_controls(hp: ClipStylerHyperParams, taus: Sequence[float], ns: Sequence[int]) -> dict[str, Any]:
    """The live view's widgets, keyed by the parameter names of :func:`render_cached`'s key (setting, τ, n, λ_d, λ_p, λ_c)."""
    import ipywidgets as widgets

    def nearest(values: Sequence[float], v: float) -> float:
        return min(values, key=lambda x: abs(x - v))

    return {
        "setting": widgets.Dropdown(options=[(a.title, k) for k, a in ABLATIONS.items()], value="a", description="setting"),
        "tau_": widgets.SelectionSlider(options=list(taus), value=nearest(taus, hp.tau), description="τ"),
        "n_": widgets.SelectionSlider(options=list(ns), value=nearest(ns, hp.n_patches), description="n"),
        "lambda_d": widgets.FloatLogSlider(value=hp.lambda_dir, base=10, min=-1, max=4, description="λ_d", continuous_update=False),
        "lambda_p": widgets.FloatLogSlider(value=hp.lambda_patch, base=10, min=-1, max=5, description="λ_p", continuous_update=False),
        "lambda_c_": widgets.FloatLogSlider(value=hp.lambda_c, base=10, min=-1, max=4, description="λ_c", continuous_update=False),
    }


def retrain_button(controls: Mapping[str, Any], hp: ClipStylerHyperParams, train: Callable[..., Any], cache: MutableMapping[CacheKey, torch.Tensor],
                   iterations: int) -> Any:  # fmt: skip
    """A "Retrain" button with a progress bar: ``train(hp_live, ablation, callback)`` -> shown image, added to ``cache``.

    Training runs only on the click, never on a slider move; the new run is then one more cached setting.
    """
    import ipywidgets as widgets

    button = widgets.Button(description="Retrain with these settings", button_style="warning")
    bar = widgets.IntProgress(min=0, max=iterations, description="training")
    log = widgets.Output()

    def on_click(_: Any) -> None:
        v = {k: c.value for k, c in controls.items()}
        bar.value = 0
        hp_live = with_overrides(hp, tau=v["tau_"], n_patches=v["n_"], lambda_dir=v["lambda_d"], lambda_patch=v["lambda_p"], lambda_c=v["lambda_c_"])
        image = train(hp_live, ABLATIONS[v["setting"]], lambda step: setattr(bar, "value", step))
        cache[cache_key(v["setting"], hp_live)] = image
        with log:
            log.clear_output()
            print(f"trained {iterations} iterations; move a slider (or this one back) to see it")

    button.on_click(on_click)
    return widgets.VBox([widgets.HBox([button, bar]), log])


# --- Fig. 6 (notebook section 8): does each ablation do what its definition says? -----------------------------------
def ablation_evidence(ab: Ablation, record: Mapping[str, Any], tol: float) -> dict[str, Any]:
    """Each defining property of ablation ``ab`` (Sec. 4.4, Fig. 6) checked on the numbers its run recorded.

    ``record`` is the notebook's experiment record: ``final`` (the loss terms present), ``rejected_total`` (crops
    zeroed by R over the run), ``aug_change_mean`` (mean |warped − raw| of the crops CLIP saw) and
    ``patch_minus_unrejected`` (λ_p L_patch minus the same term without R, per step). The properties:
    L_dir present iff ``use_dir``; L_patch present iff ``use_patch`` (no crop diagnostics without it); with R, the
    term is never above the unrejected mean (gap ≤ ``tol``); without R nothing is rejected and the gap is 0 (±``tol``);
    with augmentation the crops change (> 0), without it they do not (= 0). ``tol`` absorbs float32 rounding of
    the λ-weighted terms.
    """
    final = record["final"]
    checks = {"L_dir present" if ab.use_dir else "L_dir absent": ("dir" in final) == ab.use_dir,
              "L_patch present" if ab.use_patch else "L_patch absent": ("patch" in final) == ab.use_patch}  # fmt: skip
    gaps = record.get("patch_minus_unrejected")
    if not ab.use_patch:
        checks["no crops recorded"] = record.get("rejected_total") is None and record.get("aug_change_mean") is None
    else:
        if ab.rejection:
            checks["R never raises L_patch"] = bool(gaps) and max(gaps) <= tol
        else:
            checks["nothing rejected"] = record["rejected_total"] == 0 and bool(gaps) and max(abs(g) for g in gaps) <= tol
        change = record["aug_change_mean"]
        checks["crops unwarped" if ab.augmentation == "none" else f"crops warped ({ab.augmentation})"] = (
            change == 0.0 if ab.augmentation == "none" else change is not None and change > 0.0)
    return {"title": ab.title, "terms": sorted(final), "rejected_total": record.get("rejected_total"),
            "max_patch_gap": max(gaps) if gaps else None, "aug_change_mean": record.get("aug_change_mean"), "tol": tol,
            "checks": checks, "acts_as_defined": all(checks.values())}  # fmt: skip


def verdict(summary: dict[str, Any], name: str, claim: str, holds: bool | None, evidence: str, why_not: str = "") -> str:
    """Print and record (``summary["verdicts"][name]``) the verdict on one claim, computed from the numbers.

    ``holds`` None, or a non-empty ``why_not``, gives "not evaluable" (the numbers cannot show the claim, e.g. a
    random CLIP reads no meaning into the text); else "reproduced" or "not reproduced".
    """
    word = "not evaluable" if why_not or holds is None else ("reproduced" if holds else "not reproduced")
    summary.setdefault("verdicts", {})[name] = {"claim": claim, "verdict": word, "holds": holds, "evidence": evidence, "why_not": why_not}
    print(f"{claim}: {evidence} -> {word.upper()}" + (f" ({why_not})" if why_not else ""))
    return word
