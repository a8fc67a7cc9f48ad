"""StyleCLIP (Patashnik, Wu, Shechtman, Cohen-Or & Lischinski, ICCV 2021): notebook 04.

- :mod:`.latent`: the two methods that edit the latent code w: optimisation (Sec. 4) and the latent mapper (Sec. 5).
- :mod:`.global_directions`: text → StyleSpace direction without training (Sec. 6).
- :mod:`.projector`: real photographs into W+ (an encoder's latents, or projection by optimisation).

The generator and the identity network are in :mod:`stylecore.nets` (``stylegan2``, ``arcface``); the CLIP
losses StyleCLIP shares with CLIPstyler in :mod:`stylecore.clip_guidance`.
"""

from . import global_directions, latent, projector
from .projector import load_latents, project

__all__ = ["global_directions", "latent", "projector", "load_latents", "project"]
