"""What a run prints: one screen before training, one line per sweep trial, tables that fit."""

from __future__ import annotations

import math
import re
from io import StringIO
from pathlib import Path

from rich.console import Console

from practicum.config.config_tree import diff_configs
from practicum.config.goal import Goal
from practicum.methodology.checks import CheckResult, print_checks
from practicum.methodology.outcome import print_metrics_table

from conftest import compose_train, run_cli

NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?")


def _changed(tmp_path: Path, overrides: list[str], parts: list[str]) -> dict:
    """What the first screen lists for `overrides`, against the defaults of the same parts."""
    return diff_configs(compose_train(tmp_path, overrides), compose_train(tmp_path, parts))


def test_changed_keys_are_the_key_overrides_not_the_parts(tmp_path: Path):
    changed = _changed(tmp_path, ["model=mlp", "optimizer.lr=0.01"], ["model=mlp"])
    assert changed == {"optimizer.lr": 0.01}
    # keys that refer to goal.target (early stopping, checkpointing) are not listed again
    assert _changed(tmp_path, ["goal.target=0.9"], []) == {"goal.target": 0.9}
    removed = _changed(tmp_path, ["~callbacks.lr_monitor", "callbacks.early_stopping=null"], [])
    assert removed == {"callbacks.early_stopping": None, "~callbacks.lr_monitor": None}


def test_an_experiment_file_shows_its_keys(tmp_path: Path):
    parts = ["data=wine", "model=mlp", "optimizer=rmsprop", "scheduler=cosine"]
    changed = _changed(tmp_path, ["experiment=wine_mlp"], parts)
    assert changed["optimizer.lr"] == 0.003 and changed["trainer.max_epochs"] == 40
    assert changed["model.net.hidden_units"] == 64 and changed["goal.target"] == 0.95
    assert not any(key.startswith(("data.", "paths.", "callbacks.")) for key in changed)


def _first_screen(stdout: str) -> list[str]:
    """The lines printed before the end-of-run table."""
    lines = stdout.splitlines()
    end = next(i for i, line in enumerate(lines) if line.startswith("Best checkpoint"))
    return lines[:end]


def _rows(screen: list[str]) -> dict[str, list[str]]:
    """The screen's rows: label -> the words of its cell (continued on indented lines)."""
    rows: dict[str, list[str]] = {}
    for line in screen:
        if line[:1].strip():
            label, *words = line.split()
            rows[label] = words
        elif rows and line.strip():
            rows[label] += line.split()
    return rows


def test_a_run_starts_with_one_screen(tmp_path: Path):
    result = run_cli(
        "train.py",
        "optimizer.lr=0.01",
        "trainer.max_epochs=1",
        "diagnosis.baseline_model=null",
        f"paths.log_dir={tmp_path}",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    screen = _first_screen(result.stdout)
    assert len(screen) <= 30, "\n".join(screen)
    text = "\n".join(screen)
    rows = _rows(screen)
    assert "data=digits" in rows["parts"] and "model=cnn" in rows["parts"]
    assert rows["shapes"] == ["num_classes=10", "input_shape=[1,8,8]"]
    assert sorted(rows["changed"]) == [
        "diagnosis.baseline_model=null",
        "optimizer.lr=0.01",
        f"paths.log_dir={tmp_path}",
        "trainer.max_epochs=1",
    ]
    assert "betas" not in text and "batch_size" not in text and "├──" not in text
    (run_dir,) = (tmp_path / "train" / "runs").iterdir()
    assert rows["run"] == ["dir", str(run_dir)]
    # the whole tree is in the run directory
    saved = (run_dir / "config_tree.txt").read_text()
    assert saved.splitlines()[0] == "config (train)"
    for line in ("lr: 0.01", "betas: [0.9, 0.999]", "batch_size: 64", "max_epochs: 1"):
        assert line in saved, line


def test_verbose_prints_the_whole_tree(tmp_path: Path):
    result = run_cli(
        "train.py",
        "verbose=true",
        "model=mlp",
        "trainer.max_epochs=1",
        "diagnosis.baseline_model=null",
        f"paths.log_dir={tmp_path}",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    (run_dir,) = (tmp_path / "train" / "runs").iterdir()
    tree = (run_dir / "config_tree.txt").read_text().strip()
    assert "hidden_units: 128" in tree and "betas: [0.9, 0.999]" in tree
    missing = [line for line in tree.splitlines() if line.rstrip() not in result.stdout]
    assert not missing, missing
    # data and model come first, as a reader looks for them
    assert tree.index("data") < tree.index("model") < tree.index("optimizer") < tree.index("paths")


def test_a_sweep_prints_a_line_per_trial(tmp_path: Path):
    result = run_cli(
        "train.py",
        "-m",
        "seed=1,2",
        "model=linear",
        "trainer.max_epochs=1",
        f"paths.log_dir={tmp_path}",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    trials = [line for line in lines if line.startswith("trial ")]
    assert [line.split(":")[0] for line in trials] == ["trial 0", "trial 1"], result.stdout
    assert "val/acc" in trials[0] and str(tmp_path) in trials[0]
    for noise in ("config (train)", "parts ", "Trainable params", "practicum diagnosis"):
        assert noise not in result.stdout, noise
    assert len(lines) <= 16, result.stdout


def _numbers(*texts: str) -> set[str]:
    return {match for text in texts for match in NUMBER.findall(text)}


def test_tables_keep_every_number_whole_on_a_narrow_terminal():
    console = Console(width=60, file=StringIO())
    metrics = {
        f"{split}/{name}": value + offset
        for split, offset in (("train", 0.0), ("val", 0.0123), ("test", 0.0456))
        for name, value in (
            ("acc", 0.9012),
            ("loss", 12345.678),
            ("mean_average_precision_50", 0.5),
        )
    }
    print_metrics_table(metrics, Goal("val/acc", "max", 0.98), "Best checkpoint", console)
    results = [
        CheckResult(
            "initial_loss",
            "pass",
            2.3012,
            "within 10% of 2.3026",
            "-log(1/10) = 2.3026; measured 2.3012 (0.1% off) in eval mode on the first batches",
        ),
        CheckResult("batch_independence", "pass", 1.234e-15, "<= 1e-12", "moved by 1.234e-15"),
        CheckResult("input_independent_baseline", "fail", 0.6123, "error ratio <= 0.5", "0.981"),
        CheckResult("gradient_check", "skip", math.nan, "n/a", "no float64 on this device"),
    ]
    print_checks(results, console)
    shown = console.file.getvalue()
    assert "…" not in shown
    assert max(len(line) for line in shown.splitlines()) <= 60
    expected = {f"{value:.4f}" for value in metrics.values()} | {"2.301", "1.234e-15", "0.6123"}
    expected |= _numbers(*(f"{r.threshold} {r.detail}" for r in results))
    words = set(re.split(r"[\s│┃(),;]+", shown))
    missing = sorted(number for number in expected if not any(number in w for w in words))
    assert not missing, shown


def test_the_study_table_keeps_its_numbers_whole_on_a_pipe():
    from practicum.search.study import Dimension, print_table

    space = [
        Dimension("lr", "optimizer.lr", 1e-4, 0.1, True),
        Dimension("weight_decay", "optimizer.weight_decay", 1e-6, 0.01, True),
    ]
    summary = [
        {
            "method": method,
            "best_mean": 0.9712 - i / 100,
            "best_std": 0.0041 + i / 1000,
            "test_of_chosen_mean": 0.9655 - i / 100,
            "distinct_values": {"lr": 20 - i, "weight_decay": 17 + i},
            "failed_trials": i,
        }
        for i, method in enumerate(("random", "quasi_random", "grid"))
    ]
    console = Console(width=80, file=StringIO())  # what a pipe or a plain terminal gets
    print_table(summary, space, Goal("val/acc", "max", 0.98), console)
    shown = console.file.getvalue()
    assert "…" not in shown and "quasi_random" in shown, shown
    for row in summary:
        for number in (row["best_mean"], row["best_std"], row["test_of_chosen_mean"]):
            assert f"{number:.4f}" in shown, (number, shown)


def test_a_trial_is_one_line():
    from practicum.methodology.outcome import trial_line
    from practicum.methodology.run_summary import RunSummary

    metrics = {"train/acc": 0.95541, "val/acc": 0.93333, "test/acc": 0.9481}
    goal = {"metric": "val/acc", "mode": "max", "target": 0.98}
    summary = RunSummary("completed", "/sweep/3", goal, metrics=metrics, verdict="high_train_error")
    line = trial_line(summary, Goal("val/acc", "max", 0.98))
    expected = "val/acc 0.9333 (train 0.9554, test 0.9481) goal not met, high_train_error"
    assert line == f"trial 3: {expected} -> /sweep/3"
