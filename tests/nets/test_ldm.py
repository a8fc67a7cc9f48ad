"""The LDM wrapper: real CLIP token ids offline, SD 1.x folder layout round trip, weights policy."""

from __future__ import annotations

import json
import warnings

import pytest
import torch

from stylecore.data import sha256_file
from stylecore.nets.ldm import SD_DIR_ENV, build_components, load_ldm, save_ldm, write_clip_tokenizer
from stylecore.weights import WeightsFallbackWarning, WeightsUnavailableError

NO_MODEL = "stylecore-tests/no-such-model"  # never in any hub cache


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    return save_ldm(build_components("tiny", seed=3), tmp_path_factory.mktemp("ldm") / "tiny-sd")


def test_clip_tokenizer_from_open_clip_vocab_gives_open_clips_ids(tmp_path) -> None:
    from open_clip.tokenizer import SimpleTokenizer
    from transformers import CLIPTokenizer

    tok = CLIPTokenizer.from_pretrained(write_clip_tokenizer(tmp_path))
    reference = SimpleTokenizer()
    texts = ["a drawing with ak47 not aug style of sks not m4a1 portrait", "Hello, World!  It's 2023.", "naïve café — résumé", "without except"]
    for text in texts:
        ids = tok(text, add_special_tokens=False).input_ids
        assert ids == reference.encode(text), text
    assert len(tok) == 49408
    assert tok("x").input_ids[0] == 49406 and tok("x").input_ids[-1] == 49407  # <|startoftext|>, <|endoftext|>
    assert tok("ak47", add_special_tokens=False).input_ids == [1196, 275, 278]  # three sub-tokens: ak, 4, 7</w>
    assert len(tok("m4a1", add_special_tokens=False).input_ids) == 4


def test_saved_folder_has_the_sd1_layout(tiny_folder) -> None:
    index = json.loads((tiny_folder / "model_index.json").read_text())
    assert index["_class_name"] == "StableDiffusionPipeline"
    assert index["unet"] == ["diffusers", "UNet2DConditionModel"]
    assert index["vae"] == ["diffusers", "AutoencoderKL"]
    assert index["text_encoder"] == ["transformers", "CLIPTextModel"]
    assert index["tokenizer"] == ["transformers", "CLIPTokenizer"]
    for rel in ("unet/config.json", "unet/diffusion_pytorch_model.safetensors", "vae/config.json", "vae/diffusion_pytorch_model.safetensors",
                "text_encoder/config.json", "text_encoder/model.safetensors", "tokenizer/vocab.json", "tokenizer/merges.txt",
                "scheduler/scheduler_config.json"):
        assert (tiny_folder / rel).is_file(), rel
    sched = json.loads((tiny_folder / "scheduler/scheduler_config.json").read_text())
    assert (sched["beta_start"], sched["beta_end"], sched["beta_schedule"]) == (0.00085, 0.012, "scaled_linear")


def test_local_folder_reloads_with_every_tensor_equal(tiny_folder) -> None:
    original = build_components("tiny", seed=3)
    ldm = load_ldm(NO_MODEL, weights="pretrained", local_dir=tiny_folder)
    for key in ("unet", "vae", "text_encoder"):
        want, got = original[key].state_dict(), getattr(ldm, key).state_dict()
        assert set(want) == set(got), key
        for name in want:
            assert torch.equal(want[name], got[name]), f"{key}.{name}"
    assert ldm.weights_info.source == "local folder"
    assert ldm.weights_info.sha256 == sha256_file(tiny_folder / "unet/diffusion_pytorch_model.safetensors")
    assert "RANDOM" not in ldm.weights_info.label


def test_env_override_is_used(tiny_folder, monkeypatch) -> None:
    monkeypatch.setenv(SD_DIR_ENV, str(tiny_folder))
    assert load_ldm(NO_MODEL, weights="auto").weights_info.location == str(tiny_folder)


def test_seeded_random_components_repeat_and_differ_by_seed() -> None:
    a, b, c = (build_components("tiny", seed=s)["unet"].state_dict() for s in (0, 0, 1))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_pretrained_without_weights_says_how_to_get_them(monkeypatch) -> None:
    monkeypatch.setenv("STYLECORE_OFFLINE", "1")
    monkeypatch.delenv(SD_DIR_ENV, raising=False)
    with pytest.raises(WeightsUnavailableError, match=SD_DIR_ENV):
        load_ldm(NO_MODEL, weights="pretrained")


def test_bad_local_folders_are_named(tmp_path) -> None:
    with pytest.raises(WeightsUnavailableError, match="does not exist"):
        load_ldm(weights="pretrained", local_dir=tmp_path / "nowhere")
    (tmp_path / "unet").mkdir()
    with pytest.raises(WeightsUnavailableError, match="missing model_index.json, vae"):
        load_ldm(weights="pretrained", local_dir=tmp_path)


def test_auto_offline_falls_back_to_tiny_random_loaded_from_disk(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("STYLECORE_OFFLINE", "1")
    monkeypatch.delenv(SD_DIR_ENV, raising=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ldm = load_ldm(NO_MODEL, weights="auto", cache=tmp_path, seed=5)
    assert any(issubclass(w.category, WeightsFallbackWarning) for w in caught)
    assert "RANDOM" in ldm.weights_info.label and ldm.weights_info.seed == 5
    assert (ldm.folder / "model_index.json").is_file() and ldm.folder.parent == tmp_path
    images = torch.rand(2, 3, 64, 64)
    mean, std = ldm.encode_images(images)
    assert mean.shape == (2, 4, 8, 8) and (std > 0).all()  # SD's 8× latent factor
    assert ldm.decode_latents(mean).shape == (2, 3, 64, 64)
    assert ldm.encode_prompt(["a portrait", "sks"]).shape == (2, 77, 32)


@pytest.mark.parametrize("damage", ["missing unet weights", "truncated text encoder"])
def test_sd_folder_with_a_damaged_component_is_one_clear_error(tiny_folder, tmp_path, damage) -> None:
    import shutil

    from ..faults import truncate

    folder = shutil.copytree(tiny_folder, tmp_path / "sd")
    if damage == "missing unet weights":
        for f in (folder / "unet").glob("diffusion_pytorch_model*"):
            f.unlink()
    else:
        (weights,) = (folder / "text_encoder").glob("model*.safetensors")
        truncate(weights)
    with pytest.raises(WeightsUnavailableError, match=f"could not load the Stable Diffusion folder {folder}"):
        load_ldm(weights="pretrained", local_dir=folder)
