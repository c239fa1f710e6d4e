from __future__ import annotations

import json
import pickle
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torchvision.models import MobileNet_V2_Weights, WeightsEnum

from vidlearn.errors import ConfigError, UserError
from vidlearn.models.weights import (
    WeightsDownloadError,
    cached_pretrained,
    choose_weights,
    load_checked,
    parse_weights,
    read_state_dict,
    weights_preprocessing,
)


@pytest.mark.parametrize("value", [None, "none", "None", "null"])
def test_parse_weights_reads_none_spellings_as_random_init(value: str | None) -> None:
    assert parse_weights(value, "imagenet") is None


def test_parse_weights_keeps_the_pretrained_name() -> None:
    assert parse_weights("imagenet", "imagenet") == "imagenet"


def test_parse_weights_returns_an_existing_file_as_path(tmp_path: Path) -> None:
    path = tmp_path / "weights.pt"
    path.write_bytes(b"")
    assert parse_weights(str(path), "imagenet") == path


def test_parse_weights_rejects_a_missing_file_and_names_the_choices(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"missing\.pt.*imagenet.*none"):
        parse_weights(str(tmp_path / "missing.pt"), "imagenet")


def test_cached_pretrained_offline_names_the_missing_file_and_folder(empty_hub: Path) -> None:
    with pytest.raises(FileNotFoundError) as error:
        cached_pretrained(MobileNet_V2_Weights.IMAGENET1K_V1)
    assert f"mobilenet_v2-b0353104.pth in {empty_hub}" in str(error.value)
    assert "model.weights=none" in str(error.value)


def test_cached_pretrained_accepts_a_file_in_the_hub_cache(empty_hub: Path) -> None:
    empty_hub.mkdir(parents=True)
    (empty_hub / "mobilenet_v2-b0353104.pth").write_bytes(b"")
    weights = MobileNet_V2_Weights.IMAGENET1K_V1
    assert cached_pretrained(weights) is weights


def test_cached_pretrained_downloads_a_missing_file_into_the_hub_cache(
    empty_hub: Path, served_state: tuple[Path, dict], fake_weights: Callable[[str], WeightsEnum]
) -> None:
    served, _ = served_state
    weights = fake_weights(served.as_uri())
    assert cached_pretrained(weights) is weights
    assert (empty_hub / served.name).read_bytes() == served.read_bytes()


def test_downloaded_weights_are_what_torchvision_then_loads(
    empty_hub: Path, served_state: tuple[Path, dict], fake_weights: Callable[[str], WeightsEnum]
) -> None:
    served, state = served_state
    weights = cached_pretrained(fake_weights(served.as_uri()))
    served.unlink()  # torchvision must read the hub cache, not the source
    loaded = weights.get_state_dict(progress=False, check_hash=True)
    assert all(torch.equal(loaded[key], state[key]) for key in state)


def test_cached_pretrained_shows_download_progress(
    empty_hub: Path,
    served_state: tuple[Path, dict],
    capfd: pytest.CaptureFixture[str],
    fake_weights: Callable[[str], WeightsEnum],
) -> None:
    cached_pretrained(fake_weights(served_state[0].as_uri()))
    assert "100%" in capfd.readouterr().err


def test_unreachable_hub_raises_a_user_error_naming_url_file_folder_and_key(
    hub_dir: Path, fake_weights: Callable[[str], WeightsEnum]
) -> None:
    url = "http://127.0.0.1:9/models/linear-0123abcd.pth"  # port 9: nothing listens
    with pytest.raises(UserError) as error:
        cached_pretrained(fake_weights(url), "model.backbone.weights")
    message = str(error.value)
    assert f"linear-0123abcd.pth in {hub_dir}" in message
    assert f"downloading it from {url} failed" in message
    assert "model.backbone.weights=none" in message


def test_http_error_from_the_hub_is_reported_and_leaves_no_file(
    hub_dir: Path, http_hub: str, fake_weights: Callable[[str], WeightsEnum]
) -> None:
    with pytest.raises(WeightsDownloadError, match="HTTP Error 404"):
        cached_pretrained(fake_weights(f"{http_hub}/linear-0123abcd.pth"))
    assert list(hub_dir.iterdir()) == []


def test_download_with_a_wrong_hash_is_rejected_and_leaves_no_file(
    hub_dir: Path, served_state: tuple[Path, dict], fake_weights: Callable[[str], WeightsEnum]
) -> None:
    served, _ = served_state
    renamed = served.rename(served.with_name("linear-00000000.pth"))
    with pytest.raises(WeightsDownloadError, match="invalid hash value"):
        cached_pretrained(fake_weights(renamed.as_uri()))
    assert list(hub_dir.iterdir()) == []


@pytest.mark.parametrize(
    "wrap",
    [
        lambda state: state,
        lambda state: {"state_dict": state, "epoch": 3},
        lambda state: {"model": state},
        lambda state: {"state_dict": {f"model.{key}": value for key, value in state.items()}},
    ],
    ids=["plain", "state_dict_key", "model_key", "lightning_prefix"],
)
def test_read_state_dict_unwraps_containers(tmp_path: Path, wrap) -> None:
    state = nn.Linear(2, 3).state_dict()
    torch.save(wrap(state), tmp_path / "weights.pt")
    loaded = read_state_dict(tmp_path / "weights.pt")
    assert loaded.keys() == state.keys()
    assert all(torch.equal(loaded[key], state[key]) for key in state)


def test_a_lightning_checkpoint_gives_its_model_without_the_tasks_own_buffers(
    tmp_path: Path,
) -> None:
    """A vidlearn run's .ckpt of a task with a loss weight (BinaryTask's pos_weight, class
    weights) also holds `criterion.*`, which is not the model's."""
    state = nn.Linear(2, 3).state_dict()
    checkpoint = {
        "state_dict": {
            **{f"model.{key}": value for key, value in state.items()},
            "criterion.pos_weight": torch.tensor([3.0]),
        },
        "pytorch-lightning_version": "2.5.0",
    }
    torch.save(checkpoint, tmp_path / "last.ckpt")
    loaded = read_state_dict(tmp_path / "last.ckpt")
    assert loaded.keys() == state.keys()
    assert all(torch.equal(loaded[key], state[key]) for key in state)


def test_a_state_dict_saved_from_a_ddp_wrapped_model_loses_its_module_prefix(
    tmp_path: Path,
) -> None:
    state = nn.Linear(2, 3).state_dict()
    torch.save({f"module.{key}": value for key, value in state.items()}, tmp_path / "ddp.pt")
    loaded = read_state_dict(tmp_path / "ddp.pt")
    assert loaded.keys() == state.keys()


def test_read_state_dict_rejects_pickled_objects_with_advice(tmp_path: Path) -> None:
    torch.save({"state_dict": {}, "config": object()}, tmp_path / "checkpoint.pt")
    with pytest.raises(ValueError, match=r"checkpoint\.pt.*torch\.save\(model\.state_dict\(\)"):
        read_state_dict(tmp_path / "checkpoint.pt")


def test_load_checked_copies_matching_weights() -> None:
    source, target = nn.Linear(2, 3), nn.Linear(2, 3)
    load_checked(target, source.state_dict(), "source.pt")
    assert torch.equal(target.weight, source.weight)


def test_load_checked_reports_missing_unexpected_and_mismatched_keys() -> None:
    state = {"weight": torch.zeros(4, 2), "extra": torch.zeros(1)}
    with pytest.raises(ValueError) as error:
        load_checked(nn.Linear(2, 3), state, "other.pt")
    message = str(error.value)
    assert message.startswith("other.pt: ")
    assert "1 missing keys [bias]" in message
    assert "1 unexpected keys [extra]" in message
    assert "weight: file (4, 2) vs model (3, 2)" in message


def test_load_checked_leaves_the_module_unchanged_on_mismatch() -> None:
    target = nn.Linear(2, 3)
    before = target.weight.clone()
    with pytest.raises(ValueError):
        load_checked(target, {"weight": torch.zeros(3, 2)}, "partial.pt")
    assert torch.equal(target.weight, before)


@pytest.mark.parametrize(
    "choice", [MobileNet_V2_Weights.IMAGENET1K_V1, Path("downloads/mobilenet_v2-b0353104.pth")]
)
def test_pretrained_weights_and_their_file_imply_their_mean_and_std(choice) -> None:
    preprocessing = weights_preprocessing(choice, MobileNet_V2_Weights)
    assert preprocessing.mean == pytest.approx((0.485, 0.456, 0.406))
    assert preprocessing.std == pytest.approx((0.229, 0.224, 0.225))


@pytest.mark.parametrize("choice", [None, Path("weights.pt")])
def test_random_init_and_local_files_imply_no_normalisation(choice: Path | None) -> None:
    assert weights_preprocessing(choice, MobileNet_V2_Weights) is None


@pytest.mark.parametrize("value", [None, "none", "None", "null"])
def test_choose_weights_reads_none_spellings_as_random_init(value: str | None) -> None:
    assert choose_weights(value, MobileNet_V2_Weights, {"imagenet": "IMAGENET1K_V1"}) is None


def test_choose_weights_takes_an_alias_or_torchvisions_name() -> None:
    aliases = {"imagenet": "IMAGENET1K_V1"}
    assert choose_weights("imagenet", MobileNet_V2_Weights, aliases).name == "IMAGENET1K_V1"
    assert choose_weights("IMAGENET1K_V2", MobileNet_V2_Weights, aliases).name == "IMAGENET1K_V2"


@pytest.mark.parametrize(
    "value",
    ["MobileNet_V2_Weights.IMAGENET1K_V2", "mobilenet_v2_weights.imagenet1k_v2", "imagenet1k_v2"],
)
def test_choose_weights_takes_torchvisions_name_in_any_case_with_its_enum_before_it(
    value: str,
) -> None:
    choice = choose_weights(value, MobileNet_V2_Weights, {"imagenet": "IMAGENET1K_V1"})
    assert choice is MobileNet_V2_Weights.IMAGENET1K_V2


def _write_zip(path: Path, names: list[str]) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        for name in names:
            archive.writestr(name, "x")


# One maker per kind of file that is not a state_dict, with what the message must call it.
NOT_STATE_DICTS: dict[str, tuple[Callable[[Path], None], str]] = {
    "json": (lambda p: p.write_text(json.dumps({"weight": [1.0, 2.0]})), "a JSON file"),
    "npy": (lambda p: np.save(p.open("wb"), np.zeros(3)), "a NumPy array"),
    "npz": (lambda p: np.savez(p.open("wb"), weight=np.zeros(3)), "a NumPy .npz archive"),
    "zip": (
        lambda p: _write_zip(p, ["model/weights.txt"]),
        "a zip archive that is not a PyTorch checkpoint",
    ),
    "hdf5": (lambda p: p.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(64)), "an HDF5 file"),
    "pickle": (lambda p: p.write_bytes(pickle.dumps([1, 2, 3])), "a Python pickle"),
    "list": (lambda p: torch.save([torch.zeros(2)], p), "a list"),
    "plain values": (lambda p: torch.save({"lr": 0.1, "name": "x"}, p), "'lr' holds a float"),
    "safetensors": (
        lambda p: p.write_bytes((2).to_bytes(8, "little") + b"{}"),
        "a safetensors file",
    ),
    "empty": (lambda p: p.write_bytes(b""), "an empty file"),
    "text": (lambda p: p.write_text("weights are on the shared drive\n"), "a text file"),
}


@pytest.mark.parametrize(("make", "kind"), NOT_STATE_DICTS.values(), ids=NOT_STATE_DICTS.keys())
def test_a_file_that_is_not_a_state_dict_is_named_with_what_it_holds(
    tmp_path: Path, make: Callable[[Path], None], kind: str
) -> None:
    path = tmp_path / "weights.pt"
    make(path)
    with pytest.raises(UserError) as raised:
        read_state_dict(path)
    message = str(raised.value)
    assert message.startswith(f"{path}: ") and kind in message, message
    assert "torch.save(model.state_dict(), path)" in message


@pytest.mark.parametrize("protocol", [2, 3])
def test_a_legacy_torch_file_still_loads(tmp_path: Path, protocol: int) -> None:
    state = nn.Linear(2, 3).state_dict()
    path = tmp_path / "old.pt"
    torch.save(state, path, _use_new_zipfile_serialization=False, pickle_protocol=protocol)
    assert read_state_dict(path).keys() == state.keys()


@pytest.mark.parametrize("protocol", [4, 5])
def test_a_legacy_torch_file_torch_cannot_read_weights_only_says_so(
    tmp_path: Path, protocol: int
) -> None:
    path = tmp_path / "old.pt"
    state = nn.Linear(2, 3).state_dict()
    torch.save(state, path, _use_new_zipfile_serialization=False, pickle_protocol=protocol)
    with pytest.raises(ConfigError, match=f"before zip with pickle protocol {protocol}"):
        read_state_dict(path)
