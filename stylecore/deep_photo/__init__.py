"""Deep Photo Style Transfer (Luan, Paris, Shechtman & Bala, CVPR 2017): notebook 02.

- :mod:`.loss`: the presets (paper / authors' code), the loss of Eq. 4 (content + Γ · augmented style + λ · L_m), the size cap.
- :mod:`.masks`: semantic masks and the augmented style loss of Eq. 3 (Sec. 3.2).
- :mod:`.matting`: the matting Laplacian and the photorealism regulariser L_m of Eq. 2 (Sec. 3.1).
- :mod:`.local_affine`: the authors' post-process, the smoothed best local affine (``gen_all.py``).
- :mod:`.color_transfer`: the classic colour-transfer baselines of Fig. 5 (Reinhard 2001, Pitié 2005).
"""

from . import color_transfer, local_affine, loss, masks, matting
from .color_transfer import pitie_transfer, reinhard_transfer
from .local_affine import local_affine_fit, smooth_local_affine

__all__ = [
    "color_transfer", "local_affine", "loss", "masks", "matting", "local_affine_fit", "pitie_transfer",
    "reinhard_transfer", "smooth_local_affine"
]
