"""Export a loaded model to TorchScript or ONNX, check it against PyTorch, and describe it.

The exported graph maps the normalised input (see `LoadedModel.input_shape`; the batch axis
is dynamic) to logits, exactly like the PyTorch model. It is checked on random inputs of a
batch size other than the one traced with, so a batch size frozen into the graph fails the
check. The model card records how to prepare inputs and read outputs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vidlearn.errors import ConfigError
from vidlearn.inference.checkpoint import LoadedModel

FORMATS = ("torchscript", "onnx")
TRACE_BATCH, CHECK_BATCH = 2, 3


class ExportMismatchError(RuntimeError):
    """The exported model's outputs differ from PyTorch's by at least the tolerance."""


def check_format(format: str) -> None:
    """Raise ConfigError naming the `format` key unless it is one of FORMATS."""
    if format not in FORMATS:
        raise ConfigError(
            f"format={format!r} is not a format vidlearn-export writes; pass one of "
            f"{', '.join(f'format={name}' for name in FORMATS)}."
        )


def export_model(
    loaded: LoadedModel, format: str, out: Path, tolerance: float = 1e-4, seed: int = 0
) -> float:
    """Write `loaded.model` to `out` in `format`; returns the max abs difference to PyTorch.

    Raises ExportMismatchError when the difference is >= `tolerance` (fp32 logits).
    """
    check_format(format)
    model = loaded.model.cpu().eval()
    generator = torch.Generator().manual_seed(seed)
    example = torch.randn(loaded.input_shape(TRACE_BATCH), generator=generator)
    check = torch.randn(loaded.input_shape(CHECK_BATCH), generator=generator)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with torch.inference_mode():
        expected = model(check).numpy()
    if format == "torchscript":
        with torch.no_grad():
            torch.jit.trace(model, example).save(str(out))
        actual = torch.jit.load(str(out))(check).detach().numpy()
    else:
        actual = _export_onnx(model, example, check, out)
    difference = float(np.abs(actual - expected).max())
    if not difference < tolerance:
        raise ExportMismatchError(
            f"{out}: the {format} model differs from PyTorch by {difference:.3g} (max abs, "
            f"tolerance {tolerance:g}) on a batch of {CHECK_BATCH}; the model has an operation "
            "the exporter does not reproduce. Try the other format."
        )
    return difference


def _export_onnx(
    model: torch.nn.Module, example: torch.Tensor, check: torch.Tensor, out: Path
) -> np.ndarray:
    try:
        import onnx  # noqa: F401  (torch.onnx.export needs it)
        import onnxruntime
    except ImportError as error:
        raise ConfigError(
            f"format=onnx needs onnx and onnxruntime ({error}): pip install 'vidlearn[export]', "
            "or use format=torchscript."
        ) from error
    # dynamo=False: the TorchScript-based exporter needs no onnxscript and handles GRUs.
    try:
        torch.onnx.export(
            model,
            (example,),
            str(out),
            input_names=["input"],
            output_names=["logits"],
            dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
            dynamo=False,
        )
    except torch.onnx.errors.OnnxExporterError as error:
        raise ExportMismatchError(
            f"{out}: ONNX export failed ({str(error).splitlines()[0][:300]}). With a dynamic batch "
            "axis, adaptive pooling to a size other than 1 cannot be exported (e.g. set "
            "model.backbone.pooled_size=1 when training), or use format=torchscript."
        ) from error
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    return session.run(["logits"], {"input": check.numpy()})[0]


def model_card(loaded: LoadedModel, format: str, out: Path, max_abs_diff: float) -> dict[str, Any]:
    """What a user of the exported file needs: classes, input layout, preprocessing, metrics."""
    pre = loaded.preprocessing
    outputs = {
        "multiclass": "logits (B, K): softmax gives class probabilities",
        "binary": f"logit (B, 1): sigmoid gives the probability of '{loaded.classes[-1]}' "
        f"(positive at >= {loaded.threshold})"
        if loaded.classes
        else "",
        "regression": "value (B, 1): multiply by target_std and add target_mean",
    }[loaded.label_kind]
    summary = find_summary(loaded.path)
    card: dict[str, Any] = {
        "file": out.name,
        "format": format,
        "checkpoint": str(loaded.path),
        "averaged_weights": loaded.averaged_weights,  # callbacks=ema: the exported weights
        "task": loaded.label_kind,
        "classes": loaded.classes,
        "input": {
            "name": "input",
            "shape": ["batch", *loaded.input_shape()[1:]],
            "layout": "B, C, H, W" if loaded.modality == "image" else "B, T, C, H, W",
            "dtype": "float32",
        },
        "clip_length": pre.get("frames"),
        "normalisation": normalisation(pre),
        "output": {"name": "logits", "meaning": outputs},
        "check": {"max_abs_diff": max_abs_diff, "batch": CHECK_BATCH},
        **training_metrics(loaded.path, summary),
    }
    if loaded.label_kind == "regression":
        card["output"]["target_mean"], card["output"]["target_std"] = loaded.target_stats
    return card


def normalisation(pre: dict[str, Any]) -> dict[str, Any]:
    """How pixels become model inputs: the scale, mean/std and the formula that joins them.

    With `per_frame_max_norm` (the cine presets) each frame is divided by its own largest
    pixel value instead of 255.
    """
    per_frame = bool(pre.get("per_frame_max_norm", False))
    scale = "pixel / frame_max" if per_frame else "pixel / 255"
    formula = f"({scale} - mean) / std per channel, after resizing to size x size"
    if per_frame:
        formula += (
            "; frame_max = the largest value of that frame over all its pixels and channels "
            "(1 when it is 0)"
        )
    return {
        "scale": scale,
        "per_frame_max_norm": per_frame,
        "mean": pre["mean"],
        "std": pre["std"],
        "formula": formula,
        "size": pre["size"],
        "pad_to_square": bool(pre.get("pad_to_square", False)),
    }


def training_metrics(checkpoint: Path, summary: dict[str, Any] | None) -> dict[str, Any]:
    """summary.json's final metrics when they are this checkpoint's (the run's best), else None.

    `training_metrics_checkpoint` names the checkpoint the run's metrics belong to, so a card
    of last.ckpt says whose metrics it leaves out.
    """
    best = str((summary or {}).get("best_checkpoint") or "")
    same = bool(best) and Path(best).resolve() == Path(checkpoint).resolve()
    return {
        "training_metrics": summary.get("metrics") if summary and same else None,
        "training_metrics_checkpoint": best or None,
    }


def find_summary(checkpoint: Path) -> dict[str, Any] | None:
    """The run's summary.json for a checkpoint in RUN/checkpoints/, or None when there is none."""
    for folder in (checkpoint.parent, checkpoint.parent.parent):
        candidate = folder / "summary.json"
        if candidate.is_file():
            return json.loads(candidate.read_text())
    return None
