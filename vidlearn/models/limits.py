"""The inputs a model accepts, stated up front so a mismatch is reported in config terms.

Models expose an `input_limits` attribute; the pre-flight check (`vidlearn.tasks.preflight`)
compares it with the first training batch before any worker or progress bar starts, so a clip
that is too short reads "s3d needs data.frames >= 5" instead of a pooling error mid-setup.
The data keys named here are the ones the model presets interpolate from (conf/model/*.yaml).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class InputLimits:
    """Clip length and frame size a model can take; `None` frames for image models.

    `frames` / `size` are fixed values (a model whose flatten width depends on them), the `min_`
    values lower bounds (downsampling that runs out of input), the `_multiple` values the step
    a model reads its input in (a transformer's patches and tubelets: a remainder would never be
    seen). Fixed values follow the model's `model.num_frames` / `model.size` keys, unless
    `fixed_by` says what else fixes them (e.g. pretrained position tables): then only the data
    keys can change. `hint` is appended to a refusal, e.g. a model without the limit to pick
    instead.
    """

    name: str
    min_frames: int = 1
    min_size: int = 1
    frames: int | None = None
    size: int | None = None
    frames_multiple: int = 1
    size_multiple: int = 1
    hint: str = ""
    fixed_by: str = ""

    def problems(self, frames: int | None, size: int) -> list[str]:
        """What is wrong with clips of `frames` x `size` x `size` for this model; empty if fine."""
        if self.fixed_by:
            found = self._fixed_problems(frames, size)
        else:
            found = self._model_key_problems(frames, size)
        if frames is not None and frames < self.min_frames:
            found.append(
                f"{self.name} needs data.frames >= {self.min_frames} at data.size={size} "
                f"(got data.frames={frames}); raise data.frames"
            )
        if size < self.min_size:
            found.append(
                f"{self.name} needs data.size >= {self.min_size} (got data.size={size}); "
                "raise data.size"
            )
        if frames is not None and frames >= self.min_frames and frames % self.frames_multiple:
            found.append(
                f"{self.name} reads data.frames={frames} in steps of {self.frames_multiple} "
                f"frames, so the last {frames % self.frames_multiple} would never be seen; set "
                f"data.frames to a multiple of {self.frames_multiple}"
            )
        if size >= self.min_size and size % self.size_multiple:
            step = self.size_multiple
            found.append(
                f"{self.name} reads data.size={size} in {step}-pixel patches, so a "
                f"{size % step}-pixel border would never be seen; set data.size to a multiple of "
                f"{step} ({size // step * step} or {(size // step + 1) * step})"
            )
        if found and self.hint:
            found[-1] += f" {self.hint}"
        return found

    def _model_key_problems(self, frames: int | None, size: int) -> list[str]:
        """Clip length and size that differ from the model's `model.num_frames` / `model.size`."""
        found = []
        if self.frames is not None and frames is not None and frames != self.frames:
            found.append(
                f"{self.name} was built for model.num_frames={self.frames} frames but the clips "
                f"have data.frames={frames}; set model.num_frames=${{data.frames}} (the preset's "
                "default) or data.frames to match"
            )
        if self.size is not None and size != self.size:
            found.append(
                f"{self.name} was built for model.size={self.size} but the frames have "
                f"data.size={size}; set model.size=${{data.size}} (the preset's default) or "
                "data.size to match"
            )
        return found

    def _fixed_problems(self, frames: int | None, size: int) -> list[str]:
        """Clip length and size that differ from values no model key changes (`fixed_by`)."""
        wrong = [
            (key, wanted, got)
            for key, wanted, got in (
                ("data.frames", self.frames, frames),
                ("data.size", self.size, size),
            )
            if wanted is not None and got is not None and got != wanted
        ]
        return [
            f"{self.name} takes only {key}={wanted} ({self.fixed_by}; got {key}={got}); "
            f"set {key}={wanted}"
            for key, wanted, got in wrong
        ]
