"""The Hugging Face video transformers: weights from a save_pretrained folder or the local hub
cache (never the network), refusals that name what to do, input limits and stochastic depth."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from vidlearn.errors import ConfigError, UserError
from vidlearn.tasks.preflight import check_input_limits

pytest.importorskip("transformers", reason="the Hugging Face video models need vidlearn[hf]")
from vidlearn.models import hf_video  # noqa: E402
from vidlearn.models.hf_video import TimeSformer, VideoMAE  # noqa: E402

# Tiny architectures: 32-wide, 16-pixel patches; clips of 4 frames of 32x32 unless a test says.
TINY = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
    "patch_size": 16,
}
CLASSES = (VideoMAE, TimeSformer)


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def tiny(cls: type, weights: str = "none", num_frames: int = 4, size: int = 32, **extra):
    return cls(3, weights=weights, num_frames=num_frames, size=size, **TINY, **extra).eval()


def clips(num_frames: int = 4, channels: int = 3, size: int = 32) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    return torch.randn(2, num_frames, channels, size, size, generator=generator)  # (B,T,C,H,W)


def saved(cls: type, folder: Path) -> torch.nn.Module:
    """A random tiny model whose backbone is saved to `folder` with save_pretrained."""
    model = tiny(cls)
    model.backbone.save_pretrained(folder)
    return model


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: cls.__name__)
def test_a_save_pretrained_folder_gives_the_saved_backbone(cls: type, tmp_path: Path) -> None:
    source = saved(cls, tmp_path)
    loaded = tiny(cls, weights=str(tmp_path))
    loaded.head.load_state_dict(source.head.state_dict())  # the head is new: copy it over
    with torch.no_grad():
        assert torch.equal(loaded(clips()), source(clips()))


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: cls.__name__)
def test_a_hub_id_is_read_from_the_local_cache(
    cls: type, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The cache's own layout: refs/main names the snapshot folder holding the files.
    repo = tmp_path / "hub" / "models--someone--tiny"
    saved_model = saved(cls, repo / "snapshots" / "0123abcd")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123abcd")
    monkeypatch.setattr(hf_video, "hub_cache", lambda: str(tmp_path / "hub"))
    loaded = tiny(cls, weights="someone/tiny")
    with torch.no_grad():
        assert torch.equal(loaded.features(clips()), saved_model.features(clips()))


def test_a_hub_id_missing_from_the_cache_names_it_the_cache_and_the_download(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hf_video, "hub_cache", lambda: str(tmp_path / "hub"))
    with pytest.raises(UserError) as caught:
        tiny(VideoMAE, weights="MCG-NJU/videomae-base")
    message = str(caught.value)
    assert "MCG-NJU/videomae-base" in message and str(tmp_path / "hub") in message
    assert "hf download MCG-NJU/videomae-base" in message and "HF_HOME" in message


def test_a_folder_of_another_model_type_is_refused_by_name(tmp_path: Path) -> None:
    saved(TimeSformer, tmp_path)
    with pytest.raises(ConfigError, match="model_type 'timesformer', but this model is 'videomae'"):
        tiny(VideoMAE, weights=str(tmp_path))


def test_a_folder_of_another_size_names_the_key_to_set(tmp_path: Path) -> None:
    saved(VideoMAE, tmp_path)
    with pytest.raises(ConfigError, match="set model.hidden_size=32"):
        VideoMAE(3, weights=str(tmp_path), num_frames=4, size=32, **{**TINY, "hidden_size": 64})


def test_a_missing_transformers_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "transformers", None)  # import transformers fails
    with pytest.raises(UserError, match=r"pip install 'vidlearn\[hf\]'"):
        tiny(TimeSformer)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: cls.__name__)
def test_grey_clips_through_adapted_weights_equal_rgb_repeats(cls: type, tmp_path: Path) -> None:
    rgb = saved(cls, tmp_path)
    grey = cls(3, weights=str(tmp_path), num_frames=4, size=32, in_channels=1, **TINY).eval()
    frames = clips(channels=1)
    with torch.no_grad():
        expected = rgb.features(frames.repeat(1, 1, 3, 1, 1))
        assert torch.allclose(grey.features(frames), expected, atol=1e-5)


def test_timesformer_tables_resized_on_load_repeat_the_nearest_entry(tmp_path: Path) -> None:
    source = tiny(TimeSformer)  # tables for 4 frames of 2 x 2 patches
    embeddings = source.backbone.embeddings
    torch.nn.init.normal_(embeddings.time_embeddings)  # zeros at init: make entries distinct
    source.backbone.save_pretrained(tmp_path)
    resized = tiny(TimeSformer, weights=str(tmp_path), num_frames=6, size=64).backbone.embeddings
    times = embeddings.time_embeddings[:, [0, 0, 1, 2, 2, 3]]  # nearest of 4 for 6 frames
    assert torch.equal(resized.time_embeddings, times)
    grid = embeddings.position_embeddings[0, 1:].reshape(2, 2, -1)  # (rows, columns, D)
    nearest = grid.repeat_interleave(2, dim=0).repeat_interleave(2, dim=1).reshape(16, -1)
    assert torch.equal(resized.position_embeddings[0, 1:], nearest)
    assert torch.equal(resized.position_embeddings[0, 0], embeddings.position_embeddings[0, 0])


@pytest.mark.parametrize(
    ("cls", "defaults"),
    [(VideoMAE, (0.5, 0.5, 0.5)), (TimeSformer, (0.485, 0.456, 0.406))],
    ids=["VideoMAE", "TimeSformer"],
)
def test_preprocessing_is_the_processors_else_the_familys(
    cls: type, defaults: tuple[float, ...], tmp_path: Path
) -> None:
    saved(cls, tmp_path)
    assert tiny(cls).preprocessing is None  # random weights impose none
    assert tiny(cls, weights=str(tmp_path)).preprocessing.mean == pytest.approx(defaults)
    settings = {"image_mean": [0.1, 0.2, 0.3], "image_std": [0.4, 0.5, 0.6]}
    (tmp_path / "preprocessor_config.json").write_text(json.dumps(settings))
    preprocessing = tiny(cls, weights=str(tmp_path)).preprocessing
    assert preprocessing.mean == (0.1, 0.2, 0.3) and preprocessing.std == (0.4, 0.5, 0.6)


def test_timesformer_drop_path_rises_linearly_to_the_last_block() -> None:
    model = tiny(TimeSformer, drop_path=0.2)
    first, last = (layer.drop_path for layer in model.backbone.encoder.layer)
    assert isinstance(first, torch.nn.Identity) and last.p == pytest.approx(0.2)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: cls.__name__)
def test_preflight_refuses_clips_of_another_length_naming_the_key(cls: type) -> None:
    with pytest.raises(ConfigError, match="model.num_frames=4 frames but the clips have data.fr"):
        check_input_limits(tiny(cls), (6, 3, 32, 32))


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: cls.__name__)
def test_preflight_refuses_frames_of_another_size_naming_the_key(cls: type) -> None:
    with pytest.raises(
        ConfigError, match="built for model.size=32 but the frames have data.size=48"
    ):
        check_input_limits(tiny(cls), (4, 3, 48, 48))


def test_preflight_refuses_frames_smaller_than_a_patch() -> None:
    with pytest.raises(ConfigError, match="model=timesformer needs data.size >= 16"):
        check_input_limits(tiny(TimeSformer, size=8), (4, 3, 8, 8))


def test_videomae_refuses_a_clip_shorter_than_a_tubelet() -> None:
    with pytest.raises(ConfigError, match="model=videomae needs data.frames >= 2"):
        tiny(VideoMAE, num_frames=1)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: cls.__name__)
def test_a_folder_saved_by_transformers_classifier_gives_its_backbone(
    cls: type, tmp_path: Path
) -> None:
    import transformers

    family = {VideoMAE: "VideoMAE", TimeSformer: "Timesformer"}[cls]
    config = getattr(transformers, f"{family}Config")(num_frames=4, image_size=32, **TINY)
    source = getattr(transformers, f"{family}ForVideoClassification")(config).eval()
    source.save_pretrained(tmp_path)  # keys under "videomae." / "timesformer.", plus its head
    loaded = tiny(cls, weights=str(tmp_path))
    with torch.no_grad():
        expected = getattr(source, cls.model_type)(clips()).last_hidden_state
        assert torch.equal(loaded.backbone(pixel_values=clips()).last_hidden_state, expected)


def test_a_folder_lacking_backbone_tensors_is_refused(tmp_path: Path) -> None:
    VideoMAE(
        3, weights="none", num_frames=4, size=32, **{**TINY, "num_hidden_layers": 1}
    ).backbone.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["num_hidden_layers"] = 2  # the config promises a block the weights lack
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match="lack or misfit .* tensors of the videomae backbone"):
        tiny(VideoMAE, weights=str(tmp_path))


def test_an_older_configs_qkv_bias_counts_as_videomaes_qv_bias(tmp_path: Path) -> None:
    saved(VideoMAE, tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["qkv_bias"] = config.pop("qv_bias") and False  # as transformers 4 saved it
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match="qv_bias=False in config.json, True here"):
        tiny(VideoMAE, weights=str(tmp_path))


def test_videomae_refuses_clips_that_are_not_whole_tubelets() -> None:
    """A 5-frame clip in 2-frame tubelets left its last frame unseen without a word."""
    with pytest.raises(ConfigError, match="data.frames=5 in steps of 2 .* a multiple of 2"):
        tiny(VideoMAE, num_frames=5)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: cls.__name__)
def test_frames_that_are_not_whole_patches_are_refused_naming_the_sizes(cls: type) -> None:
    """40-pixel frames in 16-pixel patches left an 8-pixel border unseen without a word."""
    with pytest.raises(ConfigError, match="data.size=40 in 16-pixel .* multiple of 16 .32 or 48"):
        check_input_limits(tiny(cls, size=40), (4, 3, 40, 40))
