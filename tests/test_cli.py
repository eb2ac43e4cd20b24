"""The command line as a user meets it: help, overrides, bad input, and eval.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, run_cli, train

NO_TORCH_PROBE = """
import sys
sys.argv = ["train.py", *sys.argv[1:]]
from practicum.cli import train
try:
    train()
except SystemExit:
    pass
heavy = sorted(m for m in ("torch", "lightning", "torchmetrics", "sklearn") if m in sys.modules)
print("HEAVY:", ",".join(heavy))
"""


@pytest.mark.smoke
@pytest.mark.e2e
@pytest.mark.parametrize("flag", [["--help"], ["--cfg", "job"]])
def test_help_and_cfg_do_not_import_torch(flag: list[str]):
    result = subprocess.run(
        [sys.executable, "-c", NO_TORCH_PROBE, *flag],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("HEAVY:"), result.stdout[-300:]


def test_help_lists_every_group_with_its_options():
    result = run_cli("train.py", "--help")
    assert result.returncode == 0
    assert "optimizer: adam, adamw, rmsprop, sgd" in result.stdout
    for group in ("model", "data"):  # every file of the folder, a new one included
        options = sorted(p.stem for p in (ROOT / "conf" / group).glob("*.yaml"))
        assert f"{group}: {', '.join(options)}" in result.stdout
    for group in (
        "scheduler:",
        "trainer:",
        "logger:",
        "callbacks:",
        "goal:",
        "debug:",
        "experiment:",
    ):
        assert group in result.stdout


@pytest.mark.smoke
def test_cfg_job_shows_the_override():
    result = run_cli(
        "train.py", "--cfg", "job", "model=mlp", "optimizer=rmsprop", "optimizer.lr=3e-3"
    )
    assert result.returncode == 0
    assert "practicum.nets.mlp.MLP" in result.stdout and "torch.optim.RMSprop" in result.stdout
    assert "lr: 0.003" in result.stdout


BAD_INPUTS = [
    (
        ["model=nope"],
        "unknown model 'nope': choose one of cnn,",
    ),
    (["optimizer.lr=-0.001"], "optimizer.lr=-0.001 is invalid: lr must be a number > 0"),
    (["model.net.dropout=1.0"], "model.net.dropout=1.0 is invalid: dropout must be in [0, 1)"),
    (["data.batch_size=0"], "data.batch_size=0 is invalid: batch_size must be a whole number >= 1"),
    (
        ["data=csv", "data.path=/no/such/table.csv", "model=mlp"],
        "data.path='/no/such/table.csv' does not exist",
    ),
    (["optimizer.lr=fast"], "optimizer.lr='fast' is invalid: lr must be a number > 0"),
    (["hydra.run.dir="], "hydra.run.dir= is empty, which would write the run into the current"),
    (["~model"], "model is missing (deleted with ~model, or set to null): every run needs one"),
    (["~optimizer"], "optimizer is missing (deleted with ~optimizer"),
    (['optimizer.lr=${oc.decode:"-1"}'], "optimizer.lr=-1 is invalid: lr must be a number > 0"),
    (["-m", "search=random", "search.n_trials=0"], "search.n_trials=0 is invalid"),
    (
        ["model.net._target_=os.system"],
        "model.net._target_='os.system' is not a trusted target, so it will not be run: it is outside",
    ),
    # an alias through a trusted package is followed to the function it really is
    (
        ["model.net._target_=torch.nn.functional.torch.save"],
        "(it is torch.serialization.save) is not a trusted target",
    ),
    # a package that holds classes configs need also holds functions that write files
    (
        ["+callbacks.x._target_=torchvision.datasets.utils.extract_archive"],
        "callbacks.x._target_='torchvision.datasets.utils.extract_archive' is not a trusted",
    ),
    (["optimizer._target_=builtins.eval"], "optimizer._target_='builtins.eval' is not a trusted"),
    (["model.net.dropout=1.5"], "model.net.dropout=1.5 is invalid"),
    (["data=mnist", "data.root=/no/such/dir"], "/no/such/dir"),
    # values Lightning takes silently (a negative clip clips nothing, a refresh rate below 0 hides
    # the bar) or that crash it after the first epoch (a modulo by zero)
    (["trainer.gradient_clip_val=-1"], "gradient_clip_val must be a number >= 0"),
    (["trainer.check_val_every_n_epoch=0"], "check_val_every_n_epoch must be a whole number >= 1"),
    (["+trainer.val_check_interval=0"], "val_check_interval must be a whole number of batches"),
    (["+trainer.limit_val_batches=0"], "limit_val_batches must be a whole number of batches >= 1"),
    (["+trainer.limit_train_batches=1.5"], "limit_train_batches must be a whole number"),
    (["callbacks.progress_bar.refresh_rate=-1"], "refresh_rate must be a whole number >= 0"),
    (["diagnosis.baseline_model=banana"], "diagnosis.baseline_model=banana is not a model"),
    (
        ["logger=tensorboard", "logger.tensorboard.save_dir=/proc/practicum-no"],
        "logger.tensorboard.save_dir=/proc/practicum-no cannot be written",
    ),
    (
        ["model=resnet", "model.net.pretrained=true"],
        "pretrained must be text or null (for example model.net.pretrained=/path/to/weights.pth)",
    ),
    (
        ["-m", "hydra/launcher=local_parallel", "hydra.launcher.n_jobs=0", "seed=1,2"],
        "hydra.launcher.n_jobs=0 is invalid: give the trials to run at once",
    ),
    (
        ["trainer.min_epochs=50", "trainer.max_epochs=3"],
        "trainer.min_epochs=50 is above trainer.max_epochs=3",
    ),
    (["data.num_classes=3"], "data.num_classes=3 but"),
    (["ckpt_path=/no/such/file.ckpt"], "ckpt_path='/no/such/file.ckpt' does not exist"),
    (["ckpt_path=last", "hydra.run.dir=/tmp/practicum-no-such-run"], "ckpt_path=last but"),
    (["data=csv"], "data.path must be set"),
    (["model=cnn", "data=wine"], "model=cnn needs image inputs"),
    (["-m", "hydra/launcher=slurm"], "hydra/launcher=slurm needs a SLURM cluster"),
]


def _args(case) -> list[str]:
    return case.values[0] if hasattr(case, "values") else case[0]


@pytest.mark.smoke
@pytest.mark.parametrize(
    ("args", "message"), BAD_INPUTS, ids=[" ".join(_args(case)) for case in BAD_INPUTS]
)
def test_bad_input_is_one_clear_line(tmp_path: Path, args: list[str], message: str):
    result = run_cli("train.py", *args, f"paths.log_dir={tmp_path}/logs")
    assert_refused(result, message, tmp_path / "logs")
    assert result.stdout == "", "the error line must come first, with nothing before it"


def assert_refused(result, message: str, log_dir: Path) -> None:
    """Exit 2, one error line that says `message`, no traceback, no run or sweep folder left."""
    assert result.returncode == 2, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("practicum: error:")]
    assert len(errors) == 1 and message in errors[0], result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    left = [*log_dir.glob("*/runs/*"), *log_dir.glob("*/multiruns/*")]
    assert left == [], f"a refused command left a folder behind: {left}"


# a sweep's own settings, which its sweeper reads before any trial
SWEEP_SETTINGS = [
    (["search.storage=bogus://x"], "search.storage=bogus://x cannot be opened"),
    (["optimizer.lr=interval(0.1,0.01)"], "write optimizer.lr=interval(0.01,0.1)"),
    (["optimizer.lr=tag(log,interval(0,0.01))"], "a log interval needs low > 0"),
    (["search.pruner=banana"], "search.pruner=banana is not a pruner: choose one of none"),
    (
        ["search=grid", "optimizer.lr=interval(0.001,0.01)"],
        "optimizer.lr: a grid takes listed values, not an interval: write choice(...)",
    ),
]


@pytest.mark.parametrize(
    ("args", "message"), SWEEP_SETTINGS, ids=[" ".join(a) for a, _ in SWEEP_SETTINGS]
)
def test_a_bad_search_setting_is_one_line_and_leaves_no_sweep_folder(tmp_path, args, message):
    search = [] if any(a.startswith("search=") for a in args) else ["search=random"]
    result = run_cli("train.py", "-m", *search, *args, f"paths.log_dir={tmp_path}/logs")
    assert_refused(result, message, tmp_path / "logs")


# values only the constructor (Lightning, torch) checks: its own message, on one line
CONSTRUCTOR_ERRORS = [
    (["trainer.precision=banana"], "trainer: Precision 'banana' is invalid"),
    (["trainer.devices=0"], "trainer: `Trainer(devices=0)` value is not a valid input"),
    (["trainer.precision=17-bogus"], "trainer: Precision '17-bogus' is invalid"),
    (["callbacks.early_stopping.mode=sideways"], "callbacks.early_stopping: `mode` can be"),
    (["scheduler=step", "scheduler.factory.step_size=-2"], "step_size must be a whole number >= 1"),
    (["scheduler=exponential", "scheduler.factory.gamma=0"], "gamma must be a number > 0"),
]


@pytest.mark.parametrize(
    ("args", "message"), CONSTRUCTOR_ERRORS, ids=[" ".join(a) for a, _ in CONSTRUCTOR_ERRORS]
)
def test_a_value_only_its_constructor_checks_is_one_line(tmp_path: Path, args, message):
    result = run_cli("train.py", *args, f"paths.log_dir={tmp_path}/logs")
    assert_refused(result, message, tmp_path / "logs")


@pytest.mark.smoke
def test_cli_run_writes_the_run_directory(tmp_path: Path):
    result = run_cli(
        "train.py",
        "model=mlp",
        "optimizer=rmsprop",
        "optimizer.lr=3e-3",
        "scheduler=cosine",
        "trainer.max_epochs=3",
        f"paths.log_dir={tmp_path}",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    (run_dir,) = (tmp_path / "train" / "runs").iterdir()
    for name in (
        ".hydra/config.yaml",
        ".hydra/overrides.yaml",
        "metrics.csv",
        "summary.json",
        "checkpoints/last.ckpt",
    ):
        assert (run_dir / name).exists(), name
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["epochs_trained"] == 3
    assert "Best checkpoint" in result.stdout and "Goal val/acc >= 0.98" in result.stdout
    # the model table, without a FLOPs column of zeros; Lightning's per-trainer lines once a run
    assert "Trainable params" in result.stdout and "FLOPs" not in result.stdout
    log = (run_dir / "train.log").read_text()
    assert log.count("GPU available:") == 1 and log.count("TPU available:") == 1
    assert log.count("Tip:") <= 1


def test_eval_of_weights_that_do_not_fit_their_config_is_one_line(tmp_path: Path):
    """A checkpoint whose stored config builds another net than its weights are of."""
    import torch

    _, summary, _ = train(
        tmp_path, ["model=mlp", "trainer.max_epochs=1", "diagnosis.baseline_model=null"]
    )
    checkpoint = torch.load(summary["best_checkpoint"], weights_only=False)
    checkpoint["practicum_config"]["model"]["net"]["hidden_units"] = 7
    edited = tmp_path / "edited.ckpt"
    torch.save(checkpoint, edited)
    result = run_cli("eval.py", f"ckpt_path={edited}", f"paths.log_dir={tmp_path}/logs")
    assert result.returncode == 2, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("practicum: error:")]
    assert len(errors) == 1 and "its weights do not fit the model its config builds" in errors[0]
    assert "Traceback" not in result.stderr


def test_eval_reproduces_the_test_metrics(tmp_path: Path):
    _, summary, run_dir = train(tmp_path, ["trainer.max_epochs=4"])
    result = run_cli(
        "eval.py", f"ckpt_path={summary['best_checkpoint']}", f"paths.log_dir={tmp_path}/logs"
    )
    assert result.returncode == 0, result.stderr[-2000:]
    (eval_dir,) = (tmp_path / "logs" / "eval" / "runs").iterdir()
    evaluated = json.loads((eval_dir / "eval.json").read_text())["metrics"]
    for name in ("test/acc", "test/f1", "test/loss"):
        assert evaluated[name] == pytest.approx(summary["metrics"][name], abs=1e-6)
    # eval reads the training run's summary.json beside the checkpoint and says what it measured
    trained = (
        f"{summary['metrics']['test/acc']:.4f} for this checkpoint; now {evaluated['test/acc']:.4f}"
    )
    assert f"The training run (completed) measured test/acc {trained}" in result.stdout


@pytest.mark.smoke
def test_eval_refuses_a_missing_checkpoint(tmp_path: Path):
    result = run_cli("eval.py", f"ckpt_path={tmp_path}/nope.ckpt", f"paths.log_dir={tmp_path}/logs")
    assert result.returncode == 2
    assert "ckpt_path=" in result.stderr and "does not exist" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_config_cannot_run_code(tmp_path: Path):
    """An override naming subprocess.run as a target is refused before anything is built."""
    marker = tmp_path / "ran"
    result = run_cli(
        "train.py",
        "model.net._target_=subprocess.run",
        f"+model.net.args=[touch,{marker}]",
        f"paths.log_dir={tmp_path}/logs",
    )
    assert result.returncode == 2
    assert "'subprocess.run' (it is subprocess.run) is not" in result.stderr or (
        "'subprocess.run' is not a trusted target" in result.stderr
    )
    assert not marker.exists()


def test_an_untrusted_target_is_refused_before_its_module_is_imported(tmp_path: Path, monkeypatch):
    """Importing a module runs its code: a target outside the trusted packages is refused by
    its name alone, so the module's import side effect never happens."""
    package = tmp_path / "side_effect"
    package.mkdir()
    marker = tmp_path / "imported"
    (package / "__init__.py").write_text(
        f"open({str(marker)!r}, 'w').write('ran')\nclass Net:\n    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    for target in ("side_effect.Net", "this.s"):
        result = run_cli(
            "train.py", f"model.net._target_={target}", f"paths.log_dir={tmp_path}/logs"
        )
        assert result.returncode == 2, result.stderr[-2000:]
        assert f"'{target}' is not a trusted target" in result.stderr
        assert "outside the packages configs may build from" in result.stderr
        assert "Beautiful is better than ugly" not in result.stdout + result.stderr
    assert not marker.exists()


def test_secrets_never_reach_the_run_directory(tmp_path: Path):
    secrets = {"WANDB_API_KEY": "wandb-secret-3f9c1", "OPENAI_API_KEY": "sk-secret-8d2e7"}
    env_before = {k: os.environ.get(k) for k in secrets}
    os.environ.update(secrets)
    try:
        result = run_cli(
            "train.py",
            "logger=many",
            "trainer.max_epochs=2",
            "diagnosis.baseline_model=null",
            f"paths.log_dir={tmp_path}/logs",
        )
    finally:
        for key, value in env_before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    assert result.returncode == 0, result.stderr[-2000:]
    (run_dir,) = (tmp_path / "logs" / "train" / "runs").iterdir()
    files = [p for p in run_dir.rglob("*") if p.is_file()]
    assert len(files) > 5
    for path in files:
        content = path.read_bytes()
        for value in secrets.values():
            assert value.encode() not in content, f"{value} leaked into {path}"
    for value in secrets.values():
        assert value not in result.stdout + result.stderr


def test_unwritable_log_dir_and_empty_data_are_one_line(tmp_path: Path):
    empty = tmp_path / "empty.csv"
    empty.write_text("f0,f1,label\n")
    cases = [
        (
            ["paths.log_dir=/proc/practicum-logs"],
            "paths.log_dir=/proc/practicum-logs cannot be written",
        ),
        (
            ["hydra.run.dir=/proc/practicum-run"],
            "hydra.run.dir=/proc/practicum-run cannot be written",
        ),
        (
            ["-m", "seed=1,2", f"hydra.sweep.dir={empty}/sweep"],
            f"hydra.sweep.dir={empty}/sweep cannot be written ({empty} is not a folder)",
        ),
        (
            ["data=csv", f"data.path={empty}", "model=mlp", f"paths.log_dir={tmp_path}/logs"],
            "empty",
        ),
    ]
    for args, message in cases:
        result = run_cli("train.py", *args)
        assert result.returncode == 2, result.stderr[-2000:]
        errors = [
            line for line in result.stderr.splitlines() if line.startswith("practicum: error:")
        ]
        assert len(errors) == 1 and message in errors[0], result.stderr[-2000:]
        assert "Traceback" not in result.stderr
    assert not list((tmp_path / "logs").glob("*/runs/*"))


def test_a_run_prints_and_saves_its_config_tree(tmp_path: Path):
    result = run_cli(
        "train.py",
        "model=mlp",
        "optimizer.lr=0.002",
        "trainer.max_epochs=1",
        "diagnosis.baseline_model=null",
        f"paths.log_dir={tmp_path}",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    (run_dir,) = (tmp_path / "train" / "runs").iterdir()
    saved = (run_dir / "config_tree.txt").read_text()
    assert saved.splitlines()[0] == "config (train)"
    for line in ("optimizer", "lr: 0.002", "hidden_units", "model", "max_epochs: 1"):
        assert line in saved, line
    # data and model come first, as a reader looks for them
    assert (
        saved.index("data") < saved.index("model") < saved.index("optimizer") < saved.index("paths")
    )
    # the terminal gets the key that differs from the defaults, not the tree
    assert "optimizer.lr=0.002" in result.stdout and "lr: 0.002" not in result.stdout


@pytest.fixture
def compositions(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The overrides of each config Hydra composes while the test runs."""
    from hydra._internal.config_loader_impl import ConfigLoaderImpl

    composed: list[list[str]] = []
    load = ConfigLoaderImpl._load_configuration

    def counted(self, config_name, overrides, *args, **kwargs):
        composed.append([str(o) for o in overrides])
        return load(self, config_name, overrides, *args, **kwargs)

    monkeypatch.setattr(ConfigLoaderImpl, "_load_configuration", counted)
    return composed


def test_a_run_composes_its_config_once(tmp_path: Path, compositions: list[list[str]]):
    """Once for the checks and the run alike. (The first screen composes the defaults of the same
    parts, without the key overrides, to show what the command line changed.)"""
    quick = ["data=wine", "model=mlp", "trainer.max_epochs=1", "callbacks.progress_bar=null"]
    result = run_cli("train.py", *quick, f"paths.log_dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-2000:]
    runs = [o for o in compositions if "trainer.max_epochs=1" in o]
    assert len(runs) == 1, compositions
    compositions.clear()
    refused = run_cli("train.py", *quick, "optimizer.lr=-1", f"paths.log_dir={tmp_path / 'no'}")
    assert refused.returncode == 2 and "optimizer.lr=-1 is invalid" in refused.stderr
    assert len(compositions) == 1  # the check read the composition Hydra made for the run
    assert not (tmp_path / "no").exists()


def test_in_process_commands_leave_the_process_as_they_found_it(tmp_path: Path):
    import logging

    import torch
    from hydra.core.global_hydra import GlobalHydra

    def state() -> tuple:
        handlers = list(logging.getLogger().handlers)
        return (
            sys.argv[:],
            dict(os.environ),
            logging.raiseExceptions,
            handlers,
            torch.get_num_threads(),
        )

    before = state()
    sweep = ["-m", "data=wine", "model=mlp", "optimizer.lr=0.01,0.02", "trainer.max_epochs=1"]
    result = run_cli("train.py", *sweep, "hydra/launcher=basic", f"paths.log_dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-2000:]
    assert state() == before
    assert not GlobalHydra.instance().is_initialized()


def test_hydra_sweep_syntax_passes_every_check(tmp_path: Path):
    """glob() over a group, range(), choice() and interval() reach Hydra as Hydra reads them."""
    result = run_cli(
        "train.py",
        "-m",
        "experiment=glob(wine_*)",
        "trainer.max_epochs=range(1,2)",
        "optimizer=choice(adam)",
        "++trainer.fast_dev_run=true",
        "hydra/launcher=basic",
        "callbacks.progress_bar=null",
        f"paths.log_dir={tmp_path}",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    trials = sorted((tmp_path / "train" / "multiruns").glob("*/*/summary.json"))
    assert len(trials) == 1
    assert "interval" not in result.stderr
    for bad in ("model=glob(nope*)", "optimizer.lr=interval(0.1,0.2)"):
        refused = run_cli("train.py", "-m", bad, f"paths.log_dir={tmp_path / 'bad'}")
        assert refused.returncode != 0 and "Traceback" not in refused.stderr, refused.stderr


def test_a_checkpoint_written_before_the_modules_moved_still_evaluates(tmp_path: Path):
    """tests/data/vae_before_regroup.ckpt names practicum.nets.generative.ConvVAE and
    practicum.checkpointing.RunCSVLogger, the paths before src/practicum was grouped by role."""
    import practicum as package

    old = ROOT / "tests/data/vae_before_regroup.ckpt"
    if not old.is_file() or package.__name__ != "practicum" + "":
        pytest.skip("a project made from the template has no checkpoint of practicum's old paths")
    result = run_cli(
        "eval.py",
        f"ckpt_path={ROOT / 'tests/data/vae_before_regroup.ckpt'}",
        f"paths.log_dir={tmp_path}",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    (record,) = (tmp_path / "eval" / "runs").glob("*/eval.json")
    metrics = json.loads(record.read_text())["metrics"]
    assert 0 < metrics["test/nelbo"] < 100
