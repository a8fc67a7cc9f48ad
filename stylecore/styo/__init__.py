"""StyO (Li et al. 2023, arXiv 2303.03231): notebook 06.

- :mod:`.idl`: the Identifier Disentanglement Learner: contrastive disentangled prompts and the fine-tuning loss.
- :mod:`.fcc`: the Fine-grained Content Controller: cross-attention control as diffusers attention processors.

The latent diffusion model is :mod:`stylecore.nets.ldm`.
"""

from . import fcc, idl
from .fcc import AttentionStore, FCCControl, InjectingAttnProcessor, sample_styo, SOURCE_BRANCHES
from .idl import (
    build_prompt, content_token_indices, eval_denoising_loss, Identifiers, idl_losses, idl_prompts, IDLConfig,
    prompt_segments, SETTINGS, train_idl,
)

__all__ = [
    "fcc", "idl", "AttentionStore", "build_prompt", "content_token_indices", "eval_denoising_loss", "FCCControl",
    "Identifiers", "idl_losses", "idl_prompts", "IDLConfig", "InjectingAttnProcessor", "prompt_segments",
    "sample_styo", "SETTINGS", "SOURCE_BRANCHES", "train_idl"
]
