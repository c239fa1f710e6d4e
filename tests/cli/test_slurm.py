"""A 2-job sweep through the submitit SLURM launcher on a local one-node cluster (CPU).

Nothing is installed here: the cluster comes from `.ci/start_slurm.sh` (slurm-wlm, root). The
test is skipped, with the reason, where sbatch is missing or no node is up.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

VIDLEARN_TRAIN = Path(sys.executable).parent / "vidlearn-train"


def cluster_problem() -> str | None:
    """Why no local SLURM run is possible, or None when a node is idle."""
    missing = [
        tool for tool in ("sbatch", "sinfo", "slurmctld", "slurmd") if shutil.which(tool) is None
    ]
    if missing:
        return f"{', '.join(missing)} not found: apt-get install slurm-wlm, then .ci/start_slurm.sh"
    states = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=30)
    if states.returncode != 0 or not {"idle", "mixed"} & set(states.stdout.split()):
        return f"no idle SLURM node (sinfo: {states.stdout.strip() or states.stderr.strip()}); run .ci/start_slurm.sh"
    return None


@pytest.mark.slow
def test_sweep_through_slurm_launcher_runs_both_jobs(tmp_path: Path, demo_videos: Path) -> None:
    problem = cluster_problem()
    if problem:
        pytest.skip(problem)
    sweep = tmp_path / "sweep"
    result = subprocess.run(
        [
            str(VIDLEARN_TRAIN),
            "-m",
            "hydra/launcher=slurm",
            "hydra.launcher.mem_gb=1",
            "hydra.launcher.timeout_min=10",
            f"data.manifest={demo_videos}",
            f"paths.cache_dir={tmp_path / 'cache'}",
            "data.size=32",
            "data.frames=6",
            "trainer.max_epochs=1",
            "data.num_workers=0",
            "~callbacks.progress_bar",
            "optimizer.lr=1e-3,1e-4",
            f"hydra.sweep.dir={sweep}",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    table = pd.read_csv(sweep / "sweep.csv")
    assert list(table["status"]) == ["ok", "ok"]
    assert sorted(table["optimizer.lr"]) == [1e-4, 1e-3]
    assert list(sweep.glob(".submitit/*/*_log.out")), "jobs did not run through submitit"


def slurm_script() -> str:
    """The batch script of docs/scale.md, with `srun` printing the command it would run."""
    doc = (Path(__file__).parents[2] / "docs" / "scale.md").read_text()
    script = next(block for block in doc.split("```bash\n")[1:] if "#SBATCH" in block)
    return 'srun() { echo "$@"; }\n' + script.split("```")[0]


@pytest.mark.parametrize("checkpointed", [True, False])
def test_the_documented_slurm_script_resumes_a_requeued_job_in_place(
    tmp_path: Path, checkpointed: bool
) -> None:
    """A requeued job keeps its id, hence its folder: it resumes there from last.ckpt (and
    starts fresh when the first attempt saved none), instead of being refused the folder."""
    run = tmp_path / "outputs" / "train" / "7"
    (run / "checkpoints").mkdir(parents=True)
    if checkpointed:
        (run / "checkpoints" / "last.ckpt").write_bytes(b"")
    environment = {"PATH": os.environ["PATH"], "SLURM_JOB_ID": "7", "SLURM_RESTART_COUNT": "1"}
    command = subprocess.run(
        ["bash", "-c", slurm_script()],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    expected = "resume=outputs/train/7" if checkpointed else "resume=null"
    assert "hydra.run.dir=outputs/train/7" in command and command.split()[-1] == expected
