"""logger=wandb: Lightning's Weights & Biases logger, with the run's config, summary, files and
plots (vidlearn.callbacks.tracker).

The mode is WANDB_MODE's, else offline: the run is written under `<run dir>/wandb/` and
`wandb sync <that folder>` uploads it later; WANDB_MODE=online logs to the server directly.
Runs of a multirun share the group `<sweep directory name>`. A resumed run (`resume=`, in place
or in a new run directory) continues the W&B run (its id) that it recorded, in the same project;
a multirun job resuming into its own directory starts a run tagged `resumed_from:<resumed id>`.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pytorch_lightning.loggers import WandbLogger

from vidlearn.callbacks.tracker import (
    Tracker,
    continues_tracker_run,
    plot_files,
    require,
    resumed_run,
    run_name,
    summary_figures,
    sweep_group,
)


class WandbTracker(WandbLogger, Tracker):
    """A W&B run in `project`, named after `run_dir` and saved in it. `resume` (the run's
    `resume=`): continue the W&B run that the resumed directory recorded in `project`, or, for a
    multirun job resuming into its own directory, tag a new run with the resumed run's id."""

    kind = "wandb"

    def __init__(
        self,
        run_dir: str,
        project: str = "vidlearn",
        mode: str = "offline",
        resume: str | None = None,
    ) -> None:
        require("wandb", "wandb")
        self.run_dir = Path(run_dir)
        earlier = resumed_run(resume, self.kind, ("id", "project"))
        continued: dict[str, Any] = {}
        if earlier is not None and not continues_tracker_run(resume, self.run_dir):
            continued = {"tags": [f"resumed_from:{earlier['id']}"]}  # a sweep job's fork
        elif earlier is not None and earlier["project"] == project:
            continued = {"id": earlier["id"], "resume": "allow"}
        group = sweep_group()
        super().__init__(
            name=run_name(Path(run_dir), group),
            save_dir=run_dir,
            project=project,
            group=group,
            mode=mode,
            **continued,
        )
        # Lightning passes anonymous=None, which wandb 0.31 answers with a deprecation warning.
        self._wandb_init.pop("anonymous", None)

    def run_entry(self) -> dict[str, str]:
        """The run's id and project, for a resume to continue it."""
        return {"id": self.experiment.id, "project": self._wandb_init["project"]}

    def log_outcome(self, run_dir: Path, summary: Mapping[str, Any]) -> None:
        """Summary figures into the run's summary, summary.json as a run file (config.yaml is
        a name W&B keeps for its own), the plots as images; then finish the run (the next run in
        this process starts its own)."""
        import wandb  # here: importing wandb takes a second that runs without it need not spend

        run = self.experiment
        run.summary.update(summary_figures(summary))
        # WANDB_MODE=disabled keeps no run folder, hence no files
        if (run_dir / "summary.json").is_file() and Path(run.dir).is_dir():
            # a copy in the run's files/ (wandb.save of the file where it is symlinks it, saying so)
            copy = Path(run.dir) / "summary.json"
            shutil.copyfile(run_dir / "summary.json", copy)
            run.save(str(copy), base_path=run.dir, policy="now")
        images = {f"plots/{plot.stem}": wandb.Image(str(plot)) for plot in plot_files(run_dir)}
        if images:
            run.log(images)
        run.finish()

    def finalize(self, status: str) -> None:
        """Finish a failed run too, so that the next run of a sweep in this process is not
        logged into it (Lightning leaves W&B runs open)."""
        super().finalize(status)
        if status == "failed" and self._experiment is not None:
            self._experiment.finish(exit_code=1)
