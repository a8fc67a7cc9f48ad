"""Networks in the layouts of their upstream checkpoints, each loaded under the weights policy (:mod:`stylecore.weights`).

- :mod:`.vgg`: VGG19 features by the papers' layer names; torchvision, Caffe and Gatys-normalised weights (01, 02, 03, 05).
- :mod:`.stylegan2`: StyleGAN2 with rosinality's module tree and state-dict keys (04).
- :mod:`.arcface`: IR-SE50 ArcFace, ``model_ir_se50.pth``'s keys, for StyleCLIP's identity loss (04).
- :mod:`.adain`: AdaIN's encoder and decoder in the layout of its PyTorch port (05's fast variant).
- :mod:`.ldm`: Stable Diffusion 1.x on diffusers, ``from_pretrained`` folders or a tiny random one (06).
- :mod:`.manual_weights`: checkpoints that only live on Google Drive (StyleGAN2, IR-SE50): found locally, never downloaded.

A network here imports only the shared modules at the top of ``stylecore``, never a paper's folder; the
submodules are imported on use (``from stylecore.nets import vgg``), so importing one does not load diffusers.
"""
