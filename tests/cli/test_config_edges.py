"""Config values at the edges (NaN, inf, 0, negative, wrong types) of the options a run reads
are refused at start by the schema, naming the key, instead of failing inside torch, Lightning
or a constructor's comparison (found by fuzzing the config groups, see experiments/README.md)."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig

from vidlearn.cli import export, stats, train
from vidlearn.cli.config import CONF_DIR
from vidlearn.cli.console import group_override_mistake, user_mistake
from vidlearn.cli.schema import check_added_keys, validate
from vidlearn.data.clip_sampling import RandomClipSampler
from vidlearn.data.probe_index import ProbeCache
from vidlearn.data.samplers import UniformRegressionSampler
from vidlearn.errors import ConfigError, UserError
from vidlearn.inference.views import build_views


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        # trained silently with an infinite rate or decay
        (["optimizer.lr=inf"], r"optimizer\.lr=inf is out of range"),
        (["optimizer.weight_decay=inf"], r"optimizer\.weight_decay=inf is out of range"),
        # ValueError / TypeError from the schedule's own arithmetic, or from torch
        (["scheduler.warmup_epochs=nan"], r"scheduler\.warmup_epochs=nan is out of range"),
        (["scheduler.warmup_epochs=abc"], r"scheduler\.warmup_epochs='abc' has the wrong type"),
        (["scheduler=onecycle", "scheduler.pct_start=2"], r"scheduler\.pct_start=2 is out of"),
        (["scheduler=onecycle", "scheduler.div_factor=0"], r"scheduler\.div_factor=0 is out of"),
        (["scheduler=plateau", "scheduler.factor=2"], r"scheduler\.factor=2 is out of range"),
        (["scheduler=plateau", "scheduler.patience=-1"], r"scheduler\.patience=-1 is out of"),
        # Lightning's message about clip_gradients, or a negative norm passed on silently
        (["trainer.gradient_clip_val=nan"], r"trainer\.gradient_clip_val=nan is out of range"),
        (["trainer.gradient_clip_val=-1"], r"trainer\.gradient_clip_val=-1 is out of range"),
        # TypeError in BinaryTask's check; a NaN weight gave a NaN loss at the first step
        (["task=binary", "task.pos_weight=abc"], r"task\.pos_weight='abc' is out of range"),
        (["task=binary", "task.pos_weight=nan"], r"task\.pos_weight=nan is out of range"),
        # a NaN class weight trained silently; a string was read as a list of its letters
        (["task.class_weights=[1,nan]"], r"task\.class_weights=\[1, nan\] is out of range"),
        (["task.class_weights=foo"], r"task\.class_weights='foo' is out of range"),
        # trained silently with a negative or NaN decay on the convolutions
        (["task.conv_weight_decay=-1"], r"task\.conv_weight_decay=-1 is out of range"),
        (["task.conv_weight_decay=nan"], r"task\.conv_weight_decay=nan is out of range"),
        # ValueError / TypeError inside the frame cache's size arithmetic
        (["data.frame_cache_max_gb=nan"], r"data\.frame_cache_max_gb=nan is out of range"),
        (["data.frame_cache_max_gb=abc"], r"data\.frame_cache_max_gb='abc' has the wrong type"),
        # OverflowError converting the deadline to an integer
        (["data.probe_timeout=inf"], r"data\.probe_timeout=inf is out of range"),
        # read as true
        (["data.normalise_on_device=abc"], r"data\.normalise_on_device='abc' has the wrong type"),
        # TypeError / ZeroDivisionError inside the model constructors
        (["model=swin3d_t", "model.drop_path=abc"], r"model\.drop_path='abc' has the wrong type"),
        (["model=swin3d_t", "model.in_channels=0"], r"model\.in_channels=0 is out of range"),
        (["model=timesformer", "model.patch_size=0"], r"model\.patch_size=0 is out of range"),
        (["model=videomae", "model.tubelet_size=0"], r"model\.tubelet_size=0 is out of range"),
        # read as true: any non-empty text is truthy where the code tests the flag
        (["data=array_folder", "data.per_frame_max_norm=abc"], r"data\.per_frame_max_norm='abc'"),
        (["data=image_csv", "data.pad_to_square=abc"], r"data\.pad_to_square='abc' has the"),
        (["data.allow_outside_root=abc"], r"data\.allow_outside_root='abc' has the wrong type"),
        (["task=regression", "task.standardize_targets=abc"], r"task\.standardize_targets='abc'"),
        (["model.freeze_backbone=abc"], r"model\.freeze_backbone='abc' has the wrong type"),
        # ValueError / TypeError inside the sampler's weights; -1 favoured the largest class
        (["sampler.alpha=nan"], r"sampler\.alpha=nan is out of range"),
        (["sampler.alpha=abc"], r"sampler\.alpha='abc' has the wrong type"),
        (["sampler.alpha=-1"], r"sampler\.alpha=-1 is out of range"),
        # ValueError from the sampler; 10**12 draws asked numpy for 3.6 TiB
        (["sampler.num_samples=0"], r"sampler\.num_samples=0 is out of range"),
        (["sampler.num_samples=1000000000000"], r"sampler\.num_samples=1000000000000 is out of"),
    ],
)
def test_an_edge_value_is_refused_naming_the_key(
    compose_train: Callable[..., DictConfig], overrides: list[str], message: str
) -> None:
    """Failed before the fix: each passed validate() and failed later (see the comments)."""
    with pytest.raises(ConfigError, match=message):
        validate(compose_train(*overrides))


@pytest.mark.parametrize(
    "overrides",
    [
        ["task=binary", "task.pos_weight=balanced"],
        ["task=binary", "task.pos_weight=2.5"],
        ["task.class_weights=balanced"],
        ["task.class_weights=[1,2.5]"],
        ["trainer.gradient_clip_val=0"],
        ["scheduler=plateau", "scheduler.patience=0"],
        ["data.frame_cache_max_gb=0.5"],
        ["sampler.alpha=0", "sampler.num_samples=100"],
    ],
)
def test_the_documented_forms_of_those_keys_pass(
    compose_train: Callable[..., DictConfig], overrides: list[str]
) -> None:
    validate(compose_train(*overrides))


def plateau_run(compose_train: Callable[..., DictConfig], manifest: Path, monitor: str):
    """A one-batch run with scheduler=plateau stepping on `monitor`."""
    return compose_train(
        f"data.manifest={manifest}",
        "data.size=16",
        "data.frames=2",
        "+trainer.limit_train_batches=1",
        "+trainer.limit_val_batches=1",
        "test=false",
        "scheduler=plateau",
        f"scheduler.monitor={monitor}",
    )


def test_a_plateau_monitor_the_run_never_logs_names_the_key(
    compose_train: Callable[..., DictConfig], demo_videos: Path
) -> None:
    """Failed before the fix: Lightning's MisconfigurationException ("ReduceLROnPlateau
    conditioned on metric nope/x which is not available") after the first epoch, which the CLI
    reported with a traceback."""
    with pytest.raises(ConfigError, match=r"scheduler\.monitor=nope/x .*logged: .*val/loss"):
        train.train(plateau_run(compose_train, demo_videos, "nope/x"))


def test_a_plateau_may_step_on_a_metric_logged_at_the_end_of_the_training_epoch(
    compose_train: Callable[..., DictConfig], demo_videos: Path
) -> None:
    """The check runs after the task logs its epoch metrics, as Lightning's own step does."""
    summary = train.train(plateau_run(compose_train, demo_videos, "train/accuracy"))
    assert summary["status"] == "ok"


def test_a_clip_sampler_refuses_a_nan_frame_rate_naming_the_key() -> None:
    """Failed before the fix: NaN passed the `> 0` check and failed converting to a stride."""
    with pytest.raises(ConfigError, match=r"target_fps must be a finite number"):
        RandomClipSampler(4, target_fps=float("nan"))


@pytest.mark.skipif(
    importlib.util.find_spec("transformer_engine") is not None,
    reason="transformer_engine is installed here, so the precision is available",
)
def test_a_precision_whose_package_is_missing_is_a_config_mistake(
    compose_train: Callable[..., DictConfig],
) -> None:
    """Failed before the fix: Lightning's ModuleNotFoundError (pip install transformer_engine)
    was reported as a vidlearn bug, with a traceback."""
    cfg = compose_train("trainer.precision=transformer-engine")
    with pytest.raises(InstantiationException) as caught:
        instantiate(cfg.trainer)
    mistake = user_mistake(caught.value)
    assert isinstance(mistake, ConfigError) and "transformer_engine" in str(mistake)


def run_main(
    console_script: Callable[..., Any], main: Callable[[], object], *argv: str
) -> tuple[int, str]:
    """Call a console script's main in this process as its script would (the `console_script`
    fixture puts back what the run changed, e.g. its logging handlers); (exit code, stderr)."""
    run = console_script(main, *argv)
    return run.returncode, run.stderr


def compose_tool(name: str, *overrides: str) -> DictConfig:
    """conf/<name>.yaml of a tool (predict, export) with `overrides`."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(name, overrides=list(overrides))


@pytest.mark.parametrize(
    ("name", "overrides", "message"),
    [
        # ValueError / TypeError in the frame cache's size arithmetic
        (
            "predict",
            ["input=x.mp4", "frame_cache_max_gb=nan"],
            r"frame_cache_max_gb=nan is out of range",
        ),
        (
            "predict",
            ["input=x.mp4", "frame_cache_max_gb=abc"],
            r"frame_cache_max_gb='abc' has the wrong type",
        ),
        # an export check that passes any difference
        ("export", ["tolerance=inf"], r"tolerance=inf is out of range"),
    ],
)
def test_a_tools_edge_value_is_refused_naming_the_key(
    name: str, overrides: list[str], message: str
) -> None:
    """Failed before the fix: each passed validate() (see the comments)."""
    with pytest.raises(ConfigError, match=message):
        validate(compose_tool(name, "ckpt=x.ckpt", *overrides))


def test_a_view_samplers_refusal_names_the_views_key() -> None:
    """Failed before the fix: "num_clips must be >= 1, got 0", without the views group's key."""
    config = {"_target_": "vidlearn.inference.views.UniformClipsSampler", "num_clips": 0}
    with pytest.raises(ConfigError, match=r"views\.num_clips must be >= 1, got 0"):
        build_views(config, {"frames": 4, "stride": 1})


@pytest.mark.parametrize(
    ("main", "argv", "key", "suggestion"),
    [
        (export.main, ["ckpt=x.ckpt", "+tolerence=1e-3"], "tolerence", "tolerance"),
        # before the fix the run went on to the missing manifest
        (train.main, ["data.manifest=no.csv", "+sed=3"], "sed", "seed"),
        (train.main, ["data.manifest=no.csv", "+paths.log_dri=x"], "paths.log_dri", "log_dir"),
    ],
)
def test_an_added_key_no_code_reads_is_refused_with_the_close_match(
    monkeypatch: pytest.MonkeyPatch,
    console_script: Callable[..., Any],
    tmp_path: Path,
    main: Callable[[], object],
    argv: list[str],
    key: str,
    suggestion: str,
) -> None:
    """Failed before the fix: Hydra refuses `tolerence=1e-3` and says to add it with `+`, which
    was then ignored: the run went on with the default tolerance, silently."""
    monkeypatch.chdir(tmp_path)
    code, err = run_main(console_script, main, *argv)
    assert code == 2
    assert f"+{key}" in err and f"did you mean {suggestion}" in err.lower()


def test_added_keys_a_constructor_or_group_takes_pass(
    compose_train: Callable[..., DictConfig],
) -> None:
    cfg = compose_train("+trainer.limit_train_batches=1")
    check_added_keys(
        cfg,
        [
            "+trainer.limit_train_batches=1",  # the Trainer refuses what it does not take
            "+callbacks.stop={_target_: pytorch_lightning.callbacks.EarlyStopping}",
            "+views=sliding",  # a config group
        ],
    )


def test_more_folds_than_rows_is_refused_naming_the_key(
    monkeypatch: pytest.MonkeyPatch,
    console_script: Callable[..., Any],
    tmp_path: Path,
    demo_videos: Path,
) -> None:
    """Failed before the fix: folds without a row were drawn silently (a fold's validation
    split empty), and data.folds=10**9 built a billion-entry list until memory ran out."""
    monkeypatch.chdir(tmp_path)
    code, err = run_main(
        console_script,
        stats.main,
        f"data.manifest={demo_videos}",
        "data.folds=1000",
        f"out={tmp_path / 'stats'}",
        "progress=false",
        "stats.probe=false",
    )
    assert code == 2 and "data.folds=1000 is more than the" in err


def test_a_probe_index_that_cannot_be_opened_names_the_path(tmp_path: Path) -> None:
    """Failed before the fix: stats.probe_cache=<a folder> ended in sqlite3's OperationalError
    ("unable to open database file"), reported with a traceback."""
    with pytest.raises(UserError, match=f"{tmp_path}.*probe index"):
        ProbeCache(tmp_path)


def test_the_regression_sampler_refuses_class_targets() -> None:
    """Failed before the fix: sampler=uniform_regression binned class indices as numbers (a
    multiclass run trained on it silently; vidlearn-stats failed naming its bins as classes)."""
    with pytest.raises(ConfigError, match=r"sampler=uniform_regression .*sampler=balanced"):
        UniformRegressionSampler(np.array([0, 1, 1, 2]))


@pytest.mark.parametrize(
    ("main", "argv", "suggestion"),
    [
        (train.main, ["data.bacth_size=3"], "did you mean data.batch_size?"),
        (train.main, ["model=r3d_18", "model.weigths=none"], "did you mean model.weights?"),
        (export.main, ["ckpt=x.ckpt", "tolerence=1e-3"], "did you mean tolerance?"),
    ],
)
def test_a_misspelt_key_is_refused_with_the_close_match(
    monkeypatch: pytest.MonkeyPatch,
    console_script: Callable[..., Any],
    tmp_path: Path,
    main: Callable[[], object],
    argv: list[str],
    suggestion: str,
) -> None:
    """Failed before the fix: Hydra's refusal named the key and offered only to add it with
    `+` (which, for a key nothing reads, was then ignored)."""
    monkeypatch.chdir(tmp_path)
    code, err = run_main(console_script, main, *argv)
    assert code == 2 and suggestion in err


@pytest.mark.parametrize(
    ("override", "key"),
    [("optimizer=sgd", "optimizer"), ("scheduler=onecycle", "scheduler")],
)
def test_a_resume_with_another_optimizer_or_scheduler_is_refused_naming_it(
    compose_train: Callable[..., DictConfig],
    demo_videos: Path,
    tmp_path: Path,
    override: str,
    key: str,
) -> None:
    """Failed before the fix: Lightning loaded the AdamW / cosine state into SGD / OneCycleLR and
    failed with KeyError('momentum') / KeyError('max_lr'), reported with a traceback."""
    tiny = [
        f"data.manifest={demo_videos}",
        "data.size=16",
        "data.frames=2",
        "+trainer.limit_train_batches=1",
        "+trainer.limit_val_batches=1",
        "test=false",
    ]
    first = train.train(compose_train(*tiny))
    run = Path(first["best_checkpoint"]).parents[1]
    resumed = compose_train(*tiny, f"resume={run}", "trainer.max_epochs=2", override)
    with pytest.raises(ConfigError, match=rf"resume: .*{key}: checkpoint '.*', now '.*'"):
        train.train(resumed)


def test_a_sweep_over_a_config_group_is_not_refused() -> None:
    """Failed before the fix: `-m mix=none,mixup` was refused as "mix needs the name of a
    config file of conf/mix, not ChoiceSweep(...)" before Hydra could run the sweep."""
    assert group_override_mistake(["-m", "mix=none,mixup", "optimizer=adam,sgd"]) is None


@pytest.mark.parametrize("override", ["augment=light,null", "mix=range(1,3)"])
def test_a_sweep_giving_a_group_something_other_than_names_is_refused(override: str) -> None:
    mistake = group_override_mistake(["-m", override])
    assert mistake is not None and "needs the name of a config file" in mistake


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("hydra.sweeper.n_trials=0", "hydra.sweeper.n_trials=0"),
        ("hydra.sweeper.direction=up", "hydra.sweeper.direction='up'"),
    ],
)
def test_an_optuna_setting_optuna_fails_on_stops_the_sweep_before_any_job(
    monkeypatch: pytest.MonkeyPatch,
    console_script: Callable[..., Any],
    tmp_path: Path,
    override: str,
    message: str,
) -> None:
    """Failed before the fix: Optuna's ValueError ("No trials are completed yet", "Please set
    either 'minimize' or 'maximize'") ended the sweep with a traceback."""
    monkeypatch.chdir(tmp_path)
    code, err = run_main(
        console_script, train.main, "-m", "hparams_search=optuna", override, "paths.log_dir=."
    )
    assert code == 2 and message in err and "Traceback" not in err
