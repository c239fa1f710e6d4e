"""`vidlearn-export`: write a checkpoint's network as TorchScript or ONNX, with a model card.

    vidlearn-export ckpt=RUN/checkpoints/last.ckpt                       # -> last.pt
    vidlearn-export ckpt=RUN/checkpoints/last.ckpt format=onnx out=model.onnx

The export is run on random inputs next to PyTorch; the max abs difference is printed and the
command fails when it reaches `tolerance`. `<out stem>.json` beside the file is the model card.
"""

from __future__ import annotations

import json
from pathlib import Path

from omegaconf import DictConfig
from rich.console import Console

from vidlearn.cli.console import console_main
from vidlearn.inference.checkpoint import load_checkpoint
from vidlearn.inference.export import check_format, export_model, model_card

SUFFIXES = {"torchscript": ".pt", "onnx": ".onnx"}


def export(cfg: DictConfig) -> Path:
    """Run `cfg` (conf/export.yaml); returns the exported file."""
    check_format(cfg.format)  # before the checkpoint is read: a typo fails at once
    loaded = load_checkpoint(cfg.ckpt)
    out = Path(cfg.out) if cfg.out else loaded.path.with_suffix(SUFFIXES.get(cfg.format, ""))
    out.open("wb").close()  # a folder or unwritable path: an OSError naming it, not torch's
    difference = export_model(loaded, cfg.format, out, cfg.tolerance, cfg.seed)
    card = out.with_suffix(".json")
    card.write_text(json.dumps(model_card(loaded, cfg.format, out, difference), indent=2))
    Console().print(
        f"{cfg.format}: {out} (model card {card.name}); max abs diff to PyTorch {difference:.2e}"
    )
    return out


@console_main("export")
def main(cfg: DictConfig) -> None:
    export(cfg)


if __name__ == "__main__":
    main()
