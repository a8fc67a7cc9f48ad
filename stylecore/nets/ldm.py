"""A latent diffusion model (Stable Diffusion 1.x layout) on diffusers, under the weights policy.

Rombach et al. 2022: an image x is encoded by a VAE into z = E(x) · 0.18215, a UNet ε_θ(z_t, t, r)
predicts the noise added at step t, conditioned by cross-attention on the CLIP text features r,
and is trained with ‖ε − ε_θ(z_t, t, r)‖² (their Eq. 2). :class:`LDM` holds the four parts.

Where the weights come from (:func:`load_ldm`, policy ``auto|pretrained|random`` of
:mod:`stylecore.weights`):

1. a local folder in the SD 1.x layout (argument ``local_dir`` or ``$STYLECORE_SD_DIR``):
   ``model_index.json``, ``unet/``, ``vae/``, ``text_encoder/``, ``tokenizer/``, ``scheduler/``;
2. a Hugging Face hub id (default ``stable-diffusion-v1-5/stable-diffusion-v1-5``) through
   ``huggingface_hub.snapshot_download``, its cache first, no download when ``$STYLECORE_OFFLINE=1``;
3. otherwise (policy ``random``, or ``auto`` with a :class:`WeightsFallbackWarning`) the *same
   diffusers/transformers classes* from small configurations (:data:`TINY`) with seeded random
   weights, written once with ``save_pretrained`` in the SD 1.x layout and read back with
   ``from_pretrained``, so the loading code that real weights take is the code that runs.

The tokenizer is always the real CLIP BPE tokenizer: offline it is built from the vocabulary that
open_clip ships (:func:`write_clip_tokenizer`), so token ids and content-token indices are the
ones Stable Diffusion sees.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..data import sha256_file
from ..weights import OFFLINE_ENV, WeightsFallbackWarning, WeightsInfo, WeightsUnavailableError, random_info, resolve_policy

__all__ = [
    "DEFAULT_MODEL_ID",
    "LDM",
    "SD_DIR_ENV",
    "SD_SUBFOLDERS",
    "SIZES",
    "build_components",
    "ldm_from_components",
    "load_ldm",
    "save_ldm",
    "write_clip_tokenizer",
]

DEFAULT_MODEL_ID = "stable-diffusion-v1-5/stable-diffusion-v1-5"
SD_DIR_ENV = "STYLECORE_SD_DIR"  # local folder in the SD 1.x layout
SD_SUBFOLDERS = ("unet", "vae", "text_encoder", "tokenizer", "scheduler")
VAE_SCALE = 0.18215  # SD 1.x vae/config.json "scaling_factor"

# SD 1.x's scheduler (scheduler/scheduler_config.json of v1-4/v1-5): scaled-linear betas.
SD_SCHEDULER = dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                    skip_prk_steps=True, steps_offset=1, set_alpha_to_one=False, clip_sample=False)

# Configurations of the same classes. "sd15" is Stable Diffusion 1.x's own size (860 M UNet
# parameters), used by the benchmark with random weights; "tiny" is the offline quick mode.
SIZES: dict[str, dict[str, dict[str, Any]]] = {
    "tiny": {
        "unet": dict(sample_size=8, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(32, 64),
                     down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
                     up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
                     cross_attention_dim=32, attention_head_dim=4, norm_num_groups=32),
        "vae": dict(in_channels=3, out_channels=3, latent_channels=4, layers_per_block=1, norm_num_groups=8,
                    block_out_channels=(8, 16, 32, 32), down_block_types=("DownEncoderBlock2D",) * 4,
                    up_block_types=("UpDecoderBlock2D",) * 4, sample_size=64, scaling_factor=VAE_SCALE),
        "text_encoder": dict(vocab_size=49408, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                             num_attention_heads=4, max_position_embeddings=77, hidden_act="quick_gelu",
                             projection_dim=32, bos_token_id=49406, eos_token_id=49407, pad_token_id=49407),
    },
    "sd15": {  # the values of SD 1.5's unet/, vae/ and text_encoder/ config.json files
        "unet": dict(sample_size=64, in_channels=4, out_channels=4, layers_per_block=2, block_out_channels=(320, 640, 1280, 1280),
                     down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
                     up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
                     cross_attention_dim=768, attention_head_dim=8, norm_num_groups=32),
        "vae": dict(in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2, norm_num_groups=32,
                    block_out_channels=(128, 256, 512, 512), down_block_types=("DownEncoderBlock2D",) * 4,
                    up_block_types=("UpDecoderBlock2D",) * 4, sample_size=512, scaling_factor=VAE_SCALE),
        "text_encoder": dict(vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                             num_attention_heads=12, max_position_embeddings=77, hidden_act="quick_gelu",
                             projection_dim=768, bos_token_id=49406, eos_token_id=49407, pad_token_id=1),
    },
}


@dataclass
class LDM:
    """The parts of a latent diffusion model and where their weights came from."""

    unet: nn.Module  # diffusers UNet2DConditionModel: ε_θ(z_t, t, r)
    vae: nn.Module  # diffusers AutoencoderKL: E and D
    text_encoder: nn.Module  # transformers CLIPTextModel: r = τ(prompt)
    tokenizer: Any  # transformers CLIPTokenizer (the real CLIP BPE)
    scheduler_config: dict[str, Any]
    weights_info: WeightsInfo
    folder: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def device(self) -> torch.device:
        return next(self.unet.parameters()).device

    @property
    def vae_scale(self) -> float:
        return float(getattr(self.vae.config, "scaling_factor", VAE_SCALE))

    @property
    def latent_factor(self) -> int:
        """How many pixels one latent cell covers (8 for SD 1.x)."""
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    def tokenize(self, prompts: list[str]) -> torch.Tensor:
        """(B, 77) token ids, padded like Stable Diffusion's pipeline (max length, truncation)."""
        out = self.tokenizer(prompts, padding="max_length", max_length=self.tokenizer.model_max_length, truncation=True, return_tensors="pt")
        return out.input_ids

    def encode_prompt(self, prompts: list[str]) -> torch.Tensor:
        """r = τ(prompt): the text encoder's last hidden state, (B, 77, D)."""
        ids = self.tokenize(prompts).to(self.device)
        return self.text_encoder(ids)[0].to(self.unet.dtype)

    def encode_images(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and std of the VAE posterior of (B, 3, H, W) images in [0, 1], already scaled by 0.18215."""
        x = (images.to(self.device, self.vae.dtype) * 2 - 1)
        dist = self.vae.encode(x).latent_dist
        return dist.mean * self.vae_scale, dist.std * self.vae_scale

    def decode_latents(self, z: torch.Tensor) -> torch.Tensor:
        """D(z / 0.18215) mapped to [0, 1]: (B, 4, h, w) -> (B, 3, 8h, 8w)."""
        x = self.vae.decode(z.to(self.vae.dtype) / self.vae_scale).sample
        return ((x.float() + 1) / 2).clamp(0, 1)

    def ddim_scheduler(self) -> Any:
        from diffusers import DDIMScheduler

        return DDIMScheduler.from_config(self.scheduler_config)

    def ddpm_scheduler(self) -> Any:
        from diffusers import DDPMScheduler

        return DDPMScheduler.from_config(self.scheduler_config)


def write_clip_tokenizer(folder: str | os.PathLike[str]) -> Path:
    """Write CLIP's BPE tokenizer files (``vocab.json``, ``merges.txt`` …) from open_clip's shipped vocabulary.

    CLIP's vocabulary (Radford et al. 2021): the 256 byte symbols, the same with ``</w>``, one
    token per BPE merge (the first 48,894 merges of ``bpe_simple_vocab_16e6.txt.gz``), then
    ``<|startoftext|>`` (49406) and ``<|endoftext|>`` (49407): 49,408 ids, as in SD's ``tokenizer/``.
    """
    from open_clip.tokenizer import bytes_to_unicode, default_bpe

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lines = gzip.open(default_bpe()).read().decode("utf-8").split("\n")
    merges = lines[1 : 49152 - 256 - 2 + 1]
    symbols = list(bytes_to_unicode().values())
    vocab = symbols + [s + "</w>" for s in symbols] + ["".join(m.split()) for m in merges] + ["<|startoftext|>", "<|endoftext|>"]
    (folder / "vocab.json").write_text(json.dumps({tok: i for i, tok in enumerate(vocab)}, ensure_ascii=False), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    special = {"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>", "pad_token": "<|endoftext|>"}
    (folder / "special_tokens_map.json").write_text(json.dumps(special, indent=2), encoding="utf-8")
    config = {**special, "model_max_length": 77, "do_lower_case": True, "tokenizer_class": "CLIPTokenizer"}
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    return folder


def build_components(size: str = "tiny", seed: int = 0) -> dict[str, Any]:
    """The SD 1.x classes at configuration ``size`` ("tiny" | "sd15") with seeded random weights.

    Returns the keyword arguments of ``StableDiffusionPipeline`` (no safety checker). The
    tokenizer is the real CLIP one; the seed is applied in a forked RNG.
    """
    from diffusers import AutoencoderKL, PNDMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    if size not in SIZES:
        raise ValueError(f"size must be one of {tuple(SIZES)}, got {size!r}")
    cfg = SIZES[size]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        unet = UNet2DConditionModel(**cfg["unet"])
        vae = AutoencoderKL(**cfg["vae"])
        text_encoder = CLIPTextModel(CLIPTextConfig(**cfg["text_encoder"]))
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = CLIPTokenizer.from_pretrained(write_clip_tokenizer(tmp))
    scheduler = PNDMScheduler.from_config(SD_SCHEDULER)  # from_config keeps the keys PNDM does not use, as SD's file does
    return dict(unet=unet.eval(), vae=vae.eval(), text_encoder=text_encoder.eval(), tokenizer=tokenizer, scheduler=scheduler)


def ldm_from_components(components: dict[str, Any], weights_info: WeightsInfo) -> LDM:
    """An :class:`LDM` from in-memory parts (``build_components``' dict), for tests and benchmarks."""
    parts = {k: components[k] for k in ("unet", "vae", "text_encoder", "tokenizer")}
    for key in ("unet", "vae", "text_encoder"):
        parts[key] = parts[key].eval().requires_grad_(False)
    return LDM(**parts, scheduler_config=dict(components["scheduler"].config), weights_info=weights_info)


def save_ldm(components: dict[str, Any], folder: str | os.PathLike[str]) -> Path:
    """Write ``components`` with ``StableDiffusionPipeline.save_pretrained`` (SD 1.x layout), atomically."""
    from diffusers import StableDiffusionPipeline

    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
    try:
        pipe = StableDiffusionPipeline(**components, safety_checker=None, feature_extractor=None, requires_safety_checker=False)
        pipe.save_pretrained(tmp, safe_serialization=True)
        # SD 1.x's tokenizer/ holds vocab.json + merges.txt (no tokenizer.json); write exactly those,
        # so that loading goes the way it goes for the published checkpoints.
        shutil.rmtree(tmp / "tokenizer")
        write_clip_tokenizer(tmp / "tokenizer")
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return folder


def _cache_root() -> Path:
    root = os.environ.get("STYLECORE_CACHE") or Path.home() / ".cache" / "stylecore"
    return Path(root) / "ldm"


def _config_digest(size: str, seed: int) -> str:
    import diffusers
    import transformers

    text = json.dumps([SIZES[size], SD_SCHEDULER, seed, diffusers.__version__, transformers.__version__], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def random_ldm_folder(size: str = "tiny", seed: int = 0, cache: str | os.PathLike[str] | None = None) -> Path:
    """A folder in the SD 1.x layout holding the ``size`` configuration with seeded random weights (made once, cached)."""
    root = Path(cache) if cache is not None else _cache_root()
    folder = root / f"{size}-seed{seed}-{_config_digest(size, seed)}"
    if not (folder / "model_index.json").exists():
        save_ldm(build_components(size, seed), folder)
    return folder


def _check_layout(folder: Path) -> None:
    missing = [p for p in ("model_index.json", *SD_SUBFOLDERS) if not (folder / p).exists()]
    if missing:
        raise WeightsUnavailableError(
            f"{folder} is not a Stable Diffusion 1.x folder: missing {', '.join(missing)}. It needs model_index.json and the "
            f"subfolders {', '.join(SD_SUBFOLDERS)} (what StableDiffusionPipeline.save_pretrained or a hub snapshot writes)."
        )


def _snapshot(model_id: str) -> tuple[Path | None, str | None]:
    """A local snapshot of hub repo ``model_id`` (cache first; download unless offline), or (None, why not)."""
    from huggingface_hub import snapshot_download

    patterns = ["model_index.json", "*/config.json", "scheduler/*", "tokenizer/*", "unet/diffusion_pytorch_model.safetensors",
                "vae/diffusion_pytorch_model.safetensors", "text_encoder/model.safetensors"]
    offline = os.environ.get(OFFLINE_ENV) == "1"
    try:
        return Path(snapshot_download(model_id, allow_patterns=patterns, local_files_only=offline)), None
    except Exception as exc:  # hub errors come as many types (network, missing cache, gated repo)
        why = f"${OFFLINE_ENV}=1 and not in the hub cache" if offline else f"{type(exc).__name__}: {str(exc)[:200]}"
        return None, why


def _load_folder(folder: Path, dtype: torch.dtype, device: str | torch.device) -> dict[str, Any]:
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    from safetensors import SafetensorError  # a truncated or garbled weights file

    _check_layout(folder)
    try:
        parts = dict(
            unet=UNet2DConditionModel.from_pretrained(folder, subfolder="unet", torch_dtype=dtype, low_cpu_mem_usage=False),
            vae=AutoencoderKL.from_pretrained(folder, subfolder="vae", torch_dtype=dtype, low_cpu_mem_usage=False),
            text_encoder=CLIPTextModel.from_pretrained(folder, subfolder="text_encoder", dtype=dtype),
            tokenizer=CLIPTokenizer.from_pretrained(folder, subfolder="tokenizer"),
        )
    except (OSError, ValueError, RuntimeError, SafetensorError) as exc:
        raise WeightsUnavailableError(f"could not load the Stable Diffusion folder {folder}: {type(exc).__name__}: {str(exc)[:300]}") from None
    for key in ("unet", "vae", "text_encoder"):
        parts[key] = parts[key].to(device).eval().requires_grad_(False)
    parts["scheduler_config"] = json.loads((folder / "scheduler" / "scheduler_config.json").read_text())
    return parts


def load_ldm(
    model_id: str = DEFAULT_MODEL_ID,
    weights: str | None = None,
    local_dir: str | os.PathLike[str] | None = None,
    size: str = "tiny",
    seed: int = 0,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
    cache: str | os.PathLike[str] | None = None,
) -> LDM:
    """A Stable Diffusion 1.x model under the weights policy (see the module docstring for the order).

    ``dtype`` defaults to fp16 on CUDA for pretrained weights and fp32 otherwise. ``size`` picks
    the random configuration (``"tiny"`` or ``"sd15"``) when no real weights are used.

    Raises:
        WeightsUnavailableError: policy "pretrained" and no folder/snapshot, or a folder that does not load.
    """
    policy = resolve_policy(weights)
    folder, problem = None, f"policy {policy!r}"
    if policy != "random":
        local = local_dir if local_dir not in (None, "") else os.environ.get(SD_DIR_ENV) or None
        if local is not None:
            folder = Path(local).expanduser()
            if not folder.is_dir():
                raise WeightsUnavailableError(f"local Stable Diffusion folder {folder} does not exist (from {'argument' if local_dir else '$' + SD_DIR_ENV})")
            _check_layout(folder)
            source = "local folder"
        else:
            folder, problem = _snapshot(model_id)
            source = "hugging face hub"
    if folder is None:
        if policy == "pretrained":
            raise WeightsUnavailableError(
                f"Stable Diffusion weights {model_id!r} are not available ({problem}). To fix: run once with network access "
                f"(the hub cache keeps them), or download the folder elsewhere and point ${SD_DIR_ENV} (or local_dir=...) at it; "
                "or use weights='random' (the same classes, tiny and random: checks wiring only)."
            )
        if policy == "auto":
            warnings.warn(f"{model_id}: Stable Diffusion weights unavailable ({problem}); using a RANDOM {size} model of the same classes. "
                          "Pictures will not look like the paper's.", WeightsFallbackWarning, stacklevel=2)
        folder = random_ldm_folder(size, seed, cache)
        parts = _load_folder(folder, dtype or torch.float32, device)
        info = random_info(f"latent diffusion, SD 1.x classes, {size} config", seed)
        return LDM(**parts, weights_info=info, folder=folder)
    if dtype is None:
        dtype = torch.float16 if torch.device(device).type == "cuda" else torch.float32
    parts = _load_folder(folder, dtype, device)
    unet_file = folder / "unet" / "diffusion_pytorch_model.safetensors"
    digest = sha256_file(unet_file) if unet_file.exists() else None
    info = WeightsInfo(f"Stable Diffusion {model_id if source != 'local folder' else folder.name}", source, digest, location=str(folder))
    return LDM(**parts, weights_info=info, folder=folder)
