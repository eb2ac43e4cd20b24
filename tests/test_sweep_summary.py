"""summary.csv, summary.md and search.png of a sweep: real sweeps through the CLI, and sweep
directories built by hand for the cases a few seconds of training cannot produce on demand."""

from __future__ import annotations

import csv
import json
import shlex
import statistics
from pathlib import Path

import pytest
import yaml

from practicum.search.sweep_summary import SweepSummary, summarize_sweep

from conftest import run_cli, search_space

QUICK = ["trainer.max_epochs=1", "diagnosis.baseline_model=null", "callbacks.progress_bar=null"]
GOAL = {"metric": "val/acc", "mode": "max", "target": 0.98}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run_sweep(tmp_path: Path, *args: str) -> Path:
    """`python train.py -m <args>` with logs under tmp_path; return the sweep directory."""
    result = run_cli("train.py", "-m", *args, *QUICK, f"paths.log_dir={tmp_path}", timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    (sweep_dir,) = (tmp_path / "train" / "multiruns").iterdir()
    assert f"Sweep summary: {sweep_dir / 'summary.md'}" in result.stdout
    return sweep_dir


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def table_rows(markdown: str, heading: str) -> list[list[str]]:
    """The body rows of the markdown table under `heading`, as lists of cells."""
    section = markdown.split(heading, 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ")][2:]
    return [[cell.strip() for cell in row.strip("|").split(" | ")] for row in rows]


def assert_png(path: Path) -> None:
    import matplotlib.image

    assert path.read_bytes()[:8] == PNG_MAGIC
    height, width, _ = matplotlib.image.imread(path).shape
    assert width >= 1000 and height >= 400


@pytest.mark.slow
def test_grid_2x2_writes_csv_markdown_and_plot(tmp_path: Path):
    sweep_dir = run_sweep(tmp_path, "optimizer.lr=1e-3,3e-3", "model.net.dropout=0,0.25")

    rows = read_csv(sweep_dir / "summary.csv")
    assert len(rows) == 4
    columns = list(rows[0])
    assert columns[:3] == ["job", "optimizer.lr", "model.net.dropout"]
    for column in ("objective", "train/acc", "val/acc", "test/acc", "status", "verdict"):
        assert column in columns
    for column in ("wall_time_s", "overrides", "run_dir"):
        assert column in columns
    assert "trainer.max_epochs" not in columns, "a fixed override is not a swept hyperparameter"
    points = {(float(r["optimizer.lr"]), float(r["model.net.dropout"])) for r in rows}
    assert points == {(lr, dropout) for lr in (1e-3, 3e-3) for dropout in (0, 0.25)}
    for row in rows:
        assert row["status"] == "completed"
        assert "trainer.max_epochs=1" in row["overrides"].split()
        summary = json.loads((Path(row["run_dir"]) / "summary.json").read_text())
        assert float(row["objective"]) == pytest.approx(summary["metrics"]["val/acc"])
        assert 0 < float(row["objective"]) <= 1 and float(row["wall_time_s"]) > 0

    markdown = (sweep_dir / "summary.md").read_text()
    assert "4 trials: 4 completed; " in markdown
    table = table_rows(markdown, "## Trials, best first")
    objectives = [float(row[4]) for row in table]
    assert len(table) == 4 and objectives == sorted(objectives, reverse=True)
    best = max(rows, key=lambda r: float(r["objective"]))
    assert table[0][1] == best["job"]
    best_overrides = yaml.safe_load((Path(best["run_dir"]) / ".hydra/overrides.yaml").read_text())
    command = f"python train.py {' '.join(shlex.quote(o) for o in best_overrides)}"
    assert f"```bash\n{command}\n```" in markdown
    assert " -m " not in command
    assert "at the" in markdown, "with two values per key, the best is always at an edge"
    assert_png(sweep_dir / "search.png")


def test_random_search_summary(tmp_path: Path):
    sweep_dir = run_sweep(tmp_path, "search=random", "search.n_trials=3")

    rows = read_csv(sweep_dir / "summary.csv")
    assert len(rows) == 3
    space = search_space("cnn")  # conf/search/space/cnn.yaml and the files it names
    assert set(space) <= set(rows[0]), "every key of the declared space gets a column"
    assert all(1e-4 <= float(r["optimizer.lr"]) <= 3e-2 for r in rows)
    assert "search.n_trials" not in rows[0]
    markdown = (sweep_dir / "summary.md").read_text()
    assert "3 trials: 3 completed; " in markdown
    assert "search=random" in markdown.split("```bash\n", 1)[1].split("\n```")[0]
    assert_png(sweep_dir / "search.png")


def test_a_failed_trial_is_counted_and_the_summary_still_written(tmp_path: Path):
    # a 9x9 kernel without padding does not fit the 8x8 digits: that trial is refused
    sweep_dir = run_sweep(tmp_path, "model.net.kernel_size=3,9", "model.net.padding=0")

    rows = {row["model.net.kernel_size"]: row for row in read_csv(sweep_dir / "summary.csv")}
    assert rows["3"]["status"] == "completed" and float(rows["3"]["objective"]) > 0
    # a config mistake found before training: the trial is refused, not failed
    assert rows["9"]["status"] == "refused" and rows["9"]["objective"] == ""
    assert "does not fit" in rows["9"]["error"]
    markdown = (sweep_dir / "summary.md").read_text()
    assert "2 trials: 1 completed, 1 refused; 0 met the goal" in markdown
    assert table_rows(markdown, "## Trials, best first")[-1][-3] == "refused"
    assert "model.net.kernel_size=3" in markdown.split("```bash\n", 1)[1]
    assert_png(sweep_dir / "search.png")


# --- sweep directories built by hand --------------------------------------------------------


def make_job(sweep_dir: Path, job: int, params: dict, objective: float | None, **summary) -> Path:
    """A job folder as a real run leaves it; `summary=None` leaves out summary.json."""
    run_dir = sweep_dir / str(job)
    (run_dir / ".hydra").mkdir(parents=True)
    overrides = [f"{k}={v}" for k, v in params.items()] + ["trainer.max_epochs=3"]
    (run_dir / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    if summary.get("status", "completed") is None:
        return run_dir
    metrics = {} if objective is None else {"train/acc": 1.0, "val/acc": objective, "test/acc": 0.5}
    content = {"goal": GOAL, "status": "completed", "objective": objective, "metrics": metrics}
    content |= {"verdict": "high_val_error", "wall_time_s": 1.5, "run_dir": str(run_dir)}
    (run_dir / "summary.json").write_text(json.dumps(content | summary))
    if objective is not None:
        curve = [f"{epoch},{epoch},{objective * (epoch + 1) / 3}" for epoch in range(3)]
        (run_dir / "metrics.csv").write_text("\n".join(["epoch,step,val/acc", *curve]) + "\n")
    return run_dir


LOG_LR = {"optimizer.lr": "tag(log, interval(1e-5, 1e-1))", "model.net.dropout": "interval(0, 0.5)"}


def test_edge_of_range_warnings(tmp_path: Path):
    # the best lr (1.2e-5) is in the lowest 10% of [1e-5, 1e-1] in log space; dropout in the middle
    trials = [("1.2e-05", "0.3", 0.95), ("0.001", "0.1", 0.90), ("0.05", "0.45", 0.85)]
    for job, (lr, dropout, objective) in enumerate(trials):
        make_job(tmp_path, job, {"optimizer.lr": lr, "model.net.dropout": dropout}, objective)

    result = summarize_sweep(tmp_path, LOG_LR)

    assert result["warnings"] == [
        "the best optimizer.lr (1.2e-05) is at the low edge of the range searched: extend the range"
    ]
    markdown = (tmp_path / "summary.md").read_text()
    assert "## Warnings" in markdown and result["warnings"][0] in markdown


def test_no_edge_warning_in_the_middle_or_at_a_zero_floor(tmp_path: Path):
    # lr 1e-3 is mid-range in log space (but near the low end in linear space); dropout 0 is a floor
    for job, (lr, dropout, objective) in enumerate([("0.001", "0", 0.9), ("0.05", "0.4", 0.8)]):
        make_job(tmp_path, job, {"optimizer.lr": lr, "model.net.dropout": dropout}, objective)
    assert summarize_sweep(tmp_path, LOG_LR)["warnings"] == []


def test_grid_edge_is_the_smallest_or_largest_value_tried(tmp_path: Path):
    grid = [("1e-4", 0.7), ("1e-3", 0.8), ("1e-2", 0.9)]
    for job, (lr, objective) in enumerate(grid):
        make_job(tmp_path, job, {"optimizer.lr": lr, "seed": "42"}, objective)
    result = summarize_sweep(tmp_path)  # no declared space: the range is what was tried
    assert result["warnings"] == [
        "the best optimizer.lr (1e-2) is at the high edge of the range searched: extend the range"
    ]
    assert list(result["best"]["params"]) == ["optimizer.lr"], "seed=42 is fixed: not swept"


def test_failed_and_diverged_trials_are_counted_never_best(tmp_path: Path):
    make_job(tmp_path, 0, {"optimizer.lr": "0.001"}, 0.9)
    make_job(tmp_path, 1, {"optimizer.lr": "0.01"}, None, status="diverged", verdict="diverged")
    # no summary.json: still running, or lost with the launcher; neither failed nor finished
    make_job(tmp_path, 2, {"optimizer.lr": "1.0"}, None, status=None)
    make_job(tmp_path, 3, {"optimizer.lr": "0.1"}, None, status="failed", error="CUDA OOM")

    result = summarize_sweep(tmp_path)

    counts = {"completed": 1, "diverged": 1, "pruned": 0, "failed": 1, "interrupted": 0}
    counts |= {"refused": 0}
    counts |= {"unfinished": 1}
    assert result["counts"] == counts | {"total": 4}
    assert result["best"]["job"] == 0
    assert result["best"]["command"] == "python train.py optimizer.lr=0.001 trainer.max_epochs=3"
    rows = {row["job"]: row for row in read_csv(tmp_path / "summary.csv")}
    assert rows["2"]["status"] == "unfinished" and "no summary.json" in rows["2"]["error"]
    assert rows["3"]["error"] == "CUDA OOM" and rows["1"]["status"] == "diverged"
    markdown = (tmp_path / "summary.md").read_text()
    assert "4 trials: 1 completed, 1 diverged, 1 failed, 1 unfinished; 0 met the goal" in markdown
    assert [row[1] for row in table_rows(markdown, "## Trials, best first")][0] == "0"
    assert_png(tmp_path / "search.png")


def test_mean_and_std_over_seeds(tmp_path: Path):
    scores = {("0.001", "0"): 0.90, ("0.001", "1"): 0.92, ("0.003", "0"): 0.95}
    scores |= {("0.003", "1"): 0.85, ("0.001", "2"): 0.94, ("0.003", "2"): 0.80}
    for job, ((lr, seed), objective) in enumerate(sorted(scores.items(), key=lambda i: i[0][1])):
        make_job(tmp_path, job, {"seed": seed, "optimizer.lr": lr}, objective)

    result = summarize_sweep(tmp_path)

    # the single best trial (0.95, lr 3e-3) is a lucky seed; the best mean is lr 1e-3
    assert result["best"]["params"]["optimizer.lr"] == "0.003"
    (first, second) = result["groups"]
    assert first["params"] == {"optimizer.lr": "0.001"} and len(first["trials"]) == 3
    assert first["mean"] == pytest.approx(statistics.fmean([0.90, 0.92, 0.94]))
    assert first["std"] == pytest.approx(statistics.stdev([0.90, 0.92, 0.94]))
    assert second["mean"] == pytest.approx(statistics.fmean([0.95, 0.85, 0.80]))
    table = table_rows((tmp_path / "summary.md").read_text(), "## Mean ± std over seeds")
    assert table[0] == ["0.001", "0,1,2", "3 / 3", "0.92 ± 0.02"]
    assert table[1][0] == "0.003"


def test_the_callback_never_fails_a_sweep(tmp_path: Path, capsys):
    from omegaconf import OmegaConf

    make_job(tmp_path, 0, {"optimizer.lr": "0.001"}, 0.9)
    (tmp_path / "0" / "summary.json").write_text("{not json")
    config = OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}, "sweeper": {}}})
    SweepSummary().on_multirun_end(config)
    assert "sweep summary not written" in capsys.readouterr().err
    assert not (tmp_path / "summary.md").exists()


def test_the_callback_ends_a_sweep_none_of_whose_trials_finished(tmp_path: Path, capsys):
    from omegaconf import OmegaConf

    make_job(tmp_path, 0, {"optimizer.lr": "0.001"}, None, status="refused", error="no fit")
    make_job(tmp_path, 1, {"optimizer.lr": "0.01"}, None, status="failed", error="trial lost")
    make_job(tmp_path, 2, {"optimizer.lr": "0.1"}, None, status=None)  # died: no summary.json
    config = OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}, "sweeper": {}}})

    with pytest.raises(SystemExit) as ended:
        SweepSummary().on_multirun_end(config)

    assert ended.value.code == 1
    error = f"practicum: error: all 3 trials of the sweep failed: see {tmp_path}/summary.md"
    assert capsys.readouterr().err.splitlines() == [error]
    assert (
        "3 trials: 0 completed, 1 failed, 1 refused, 1 unfinished; "
        in (tmp_path / "summary.md").read_text()
    )

    # one diverged trial finished training: the sweep did not fail
    make_job(tmp_path, 3, {"optimizer.lr": "1.0"}, None, status="diverged", verdict="diverged")
    SweepSummary().on_multirun_end(config)
    assert "practicum: error" not in capsys.readouterr().err


def test_ctrl_c_ends_a_failed_sweep_as_ctrl_c(tmp_path: Path, capsys):
    """Hydra calls the callback also while an error ends the sweep; Ctrl-C stays Ctrl-C."""
    from omegaconf import OmegaConf

    make_job(tmp_path, 0, {"optimizer.lr": "0.001"}, None, status="failed", error="boom")
    config = OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}, "sweeper": {}}})

    with pytest.raises(KeyboardInterrupt):
        try:
            raise KeyboardInterrupt
        finally:
            SweepSummary().on_multirun_end(config)

    assert "practicum: error" not in capsys.readouterr().err
    assert (tmp_path / "summary.md").is_file()
