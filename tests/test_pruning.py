"""Searches that prune, never wait on a batch's slowest trial, say how random TPE's start was, and
refuse a pinned knob: real sweeps through the CLI, the scheduler with stand-in trials, Optuna's
pruners on reported curves, and the dashboard on a study."""

from __future__ import annotations

import json
import math
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml
from hydra.core.utils import JobReturn, JobStatus

from hydra_plugins.practicum_launcher.search_space import SearchSpace
from hydra_plugins.practicum_launcher.trials import (
    RANDOM_STARTUP,
    Plan,
    run_in_batches,
    run_in_slots,
)
from practicum.run.study_trial import PRUNERS, make_pruner, open_storage
from practicum.search.summarize import summarize
from practicum.search.sweep_study import idle_fraction

from conftest import CONF_DIR, ROOT, run_cli, wait_for

QUICK = [
    "data=wine",
    "model=mlp",
    "diagnosis.baseline_model=null",
    "callbacks.progress_bar=null",
    "callbacks.early_stopping=null",
]


def one_sweep(tmp_path: Path, *args: str) -> Path:
    result = run_cli("train.py", "-m", *QUICK, *args, f"paths.log_dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-3000:]
    (sweep_dir,) = (tmp_path / "train" / "multiruns").iterdir()
    return sweep_dir


def summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


def table_rows(markdown: str) -> dict[str, list[str]]:
    """The trials table of summary.md by job: the cells of each row."""
    section = markdown.split("## Trials, best first", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ")][2:]
    cells = [[cell.strip() for cell in row.strip("|").split(" | ")] for row in rows]
    return {row[1]: row for row in cells}


@pytest.fixture(scope="module")
def pruned_sweep(tmp_path_factory) -> Path:
    """Two grid points, one after the other: lr 0.03 learns, lr 1e-6 does not; ASHA lets the first
    (alone at each rung) train its 6 epochs and prunes the second after its first epoch."""
    return one_sweep(
        tmp_path_factory.mktemp("pruned"),
        "search=grid",
        "search.seed=1",  # Optuna shuffles a grid by its seed: this one keeps lr 0.03 first
        "search.pruner=asha",
        "optimizer.lr=choice(0.03,1e-6)",
        "optimizer.weight_decay=choice(0)",
        "trainer.max_epochs=6",
    )


def test_a_pruned_trial_ends_as_pruned_after_the_epoch_it_reached(pruned_sweep: Path):
    kept, pruned = summary(pruned_sweep / "0"), summary(pruned_sweep / "1")
    assert kept["status"] == "completed" and kept["epochs_trained"] == 6
    assert pruned["status"] == "pruned" and pruned["epochs_trained"] == 1
    # nothing evaluated after the pruner's decision: no test split, no baseline, no diagnosis
    assert "test/acc" not in pruned["metrics"] and pruned["baseline"] is None
    assert pruned["verdict"] is None and not (pruned_sweep / "1" / "report.md").exists()
    assert pruned["objective"] == pytest.approx(pruned["metrics"]["val/acc"])
    assert pruned["objective"] < kept["objective"]
    assert (pruned_sweep / "1" / "checkpoints" / "last.ckpt").is_file()


def test_the_study_on_disk_holds_the_pruned_trial_and_its_reports(pruned_sweep: Path):
    import optuna

    saved = yaml.safe_load((pruned_sweep / "multirun.yaml").read_text())["hydra"]["sweeper"]
    assert saved["storage"] == f"journal:{pruned_sweep / 'study.journal'}"
    study = optuna.load_study(
        study_name=saved["study_name"], storage=open_storage(saved["storage"])
    )
    states = [t.state.name for t in sorted(study.trials, key=lambda t: t.number)]
    assert states == ["COMPLETE", "PRUNED"]
    assert sorted(study.trials[0].intermediate_values) == [1, 2, 3, 4, 5, 6]
    assert list(study.trials[1].intermediate_values) == [1]


def test_summary_md_lists_the_pruned_trial_and_the_trial_epochs(pruned_sweep: Path):
    markdown = (pruned_sweep / "summary.md").read_text()
    assert "2 trials: 1 completed, 1 pruned; " in markdown
    assert "Budget: 7 trial-epochs in " in markdown  # 6 + 1
    assert "Pruner: asha" in markdown
    rows = table_rows(markdown)
    assert rows["0"][0] == "1" and rows["1"][0] == "2", "the completed trial ranks first"
    assert "pruned" in rows["1"] and rows["1"][-4] == "—", "no test/acc for the pruned trial"
    # rebuilt from what is on disk (as after a killed launcher), the same files
    written = markdown
    (pruned_sweep / "summary.md").unlink()
    lines = summarize(pruned_sweep)
    assert lines[3] == "2 trials: 1 completed, 1 pruned"
    assert (pruned_sweep / "summary.md").read_text() == written


def test_a_command_line_value_of_a_searched_key_is_refused_in_one_line(tmp_path: Path):
    result = run_cli(
        "train.py", "-m", "search=random", "optimizer.lr=1e-6", f"paths.log_dir={tmp_path}"
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "practicum: error: optimizer.lr=1e-6 fixes a key the random search varies: drop it to "
        "search it, or pass search.keep_fixed=true"
    )
    assert not (tmp_path / "train").exists(), "nothing ran, no sweep folder"
    # a narrower range is a search, not a pin; keep_fixed keeps the value in every trial
    sweep_dir = one_sweep(
        tmp_path / "kept",
        "search=tpe",
        "search.n_trials=2",
        "optimizer.lr=1e-6",
        "search.keep_fixed=true",
        "model.net.dropout=interval(0.1,0.2)",
        "trainer.max_epochs=1",
    )
    for job in ("0", "1"):
        given = yaml.safe_load((sweep_dir / job / ".hydra" / "overrides.yaml").read_text())
        values = dict(item.split("=", 1) for item in given)
        assert values["optimizer.lr"] == "1e-6" and 0.1 <= float(values["model.net.dropout"]) <= 0.2


@pytest.mark.parametrize(("n_trials", "startup"), [(6, 3), (40, 10), (100, 25)])
def test_tpe_start_up_trials_follow_the_budget(n_trials: int, startup: int):
    from hydra import compose, initialize_config_dir

    from practicum.config import register_schemas
    from practicum.platform.files import register_resolvers

    register_schemas()
    register_resolvers()
    with initialize_config_dir(str(CONF_DIR)):
        cfg = compose(
            "train", ["search=tpe", f"search.n_trials={n_trials}"], return_hydra_config=True
        )
    assert cfg.hydra.sweeper.sampler.n_startup_trials == startup
    assert cfg.hydra.sweeper.sampler.constant_liar is True


def plan(tmp_path: Path, sampler: dict, n_trials: int, space: str = "x=interval(0.0, 1.0)") -> Plan:
    return Plan(
        storage=f"journal:{tmp_path / 'study.journal'}",
        study_name="test",
        direction="maximize",
        sampler=sampler,
        space=SearchSpace.parse({}, [space]),
        n_trials=n_trials,
    )


def finished(value: float = 1.0) -> JobReturn:
    result = JobReturn(status=JobStatus.COMPLETED)
    result.return_value = value
    return result


def test_tpe_trials_say_whether_they_were_drawn_at_random(tmp_path: Path):
    search = plan(
        tmp_path, {"_target_": "optuna.samplers.TPESampler", "seed": 0, "n_startup_trials": 3}, 5
    )
    for _ in range(5):  # one at a time: the start-up is the first three
        trial = search.ask()
        search.tell(trial.number, finished(trial.params["x"]))
    flags = [t.user_attrs[RANDOM_STARTUP] for t in search.study().trials]
    assert flags == [True, True, True, False, False]


# trials of uneven length, as pruning makes them (seconds)
DURATIONS = [1.8, 0.3, 0.45, 0.3, 0.9, 0.3, 0.45, 0.3, 0.6, 0.3, 0.3, 0.3]


class StandIn:
    """Trials that sleep their DURATIONS, each noting when it really ran."""

    def __init__(self) -> None:
        self.ran: dict[int, tuple[float, float]] = {}

    def launch_one(self, overrides: list[str], number: int) -> JobReturn:
        start = time.time()
        time.sleep(DURATIONS[number])
        self.ran[number] = (start, time.time())
        return finished()

    def launch(self, overrides: list[list[str]], initial_job_idx: int) -> list[JobReturn]:
        """A batch at once, returned when its slowest trial is done."""
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(len(overrides)) as pool:
            numbers = range(initial_job_idx, initial_job_idx + len(overrides))
            jobs = [
                pool.submit(self.launch_one, o, n) for o, n in zip(overrides, numbers, strict=True)
            ]
            return [job.result() for job in jobs]


def test_slots_start_the_next_trial_when_one_ends_and_stay_busy(tmp_path: Path):
    random = {"_target_": "optuna.samplers.RandomSampler", "seed": 0}
    slots, batches = StandIn(), StandIn()
    search = plan(tmp_path / "slots", random, 12)
    run_in_slots(search, 2, slots.launch_one)
    run_in_batches(plan(tmp_path / "batches", random, 12), 2, batches.launch)

    assert [t.state.name for t in search.study().trials] == ["COMPLETE"] * 12
    idle = idle_fraction(list(slots.ran.values()), 2)
    assert idle <= 0.10, f"slots idle {idle:.1%}"  # 4.5% planned: the last trial alone
    # batches of two wait for their slowest: the same trials leave the slots idle far longer
    assert idle_fraction(list(batches.ran.values()), 2) >= 0.2  # 29% planned
    # the study's times (ask to tell), which summary.md reads, are the trials' own in slots
    for trial in search.study().trials:
        start, end = slots.ran[trial.number]
        assert trial.datetime_start.timestamp() == pytest.approx(start, abs=0.3)
        assert trial.datetime_complete.timestamp() == pytest.approx(end, abs=0.3)


def test_idle_fraction_counts_slot_time_without_a_trial():
    assert idle_fraction([(0, 10), (0, 10)], 2) == 0
    assert idle_fraction([(0, 10), (0, 5)], 2) == pytest.approx(0.25)
    assert idle_fraction([(0, 4), (6, 10)], 2) == pytest.approx(0.6)


@pytest.mark.parametrize("name", PRUNERS)
def test_each_pruner_stops_a_poor_curve_only_after_min_resource(name: str):
    import optuna

    # Hyperband puts a trial in a bracket by a hash of the study's name and the trial's number:
    # a fixed name makes the brackets the same on every run (the sweeper names its study too)
    study = optuna.create_study(
        study_name="pruning", direction="maximize", pruner=make_pruner(name, 2, 3, 9)
    )
    for _ in range(12):  # good curves, to the end (Hyperband needs some in each bracket)
        trial = study.ask()
        for epoch in range(1, 10):
            trial.report(0.9 + epoch / 100, epoch)
            assert not trial.should_prune()  # as a trial asks after every epoch
        study.tell(trial, 0.99)
    stops = []
    for _ in range(4):  # poor curves: in Hyperband's brackets with a later first rung too
        poor = study.ask()
        stopped = None
        for epoch in range(1, 10):
            poor.report(0.1, epoch)
            if poor.should_prune():
                stopped = epoch
                break
        if stopped:
            study.tell(poor, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(poor, 0.1)
        stops.append(stopped)
    if name == "none":
        assert stops == [None] * 4
    else:
        assert all(s is None or s >= 2 for s in stops), f"pruned before min_resource: {stops}"
        assert any(s is not None for s in stops), "no poor curve was pruned"
        if name != "hyperband":  # one rule for every trial: every poor curve stops
            assert None not in stops, stops


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.e2e
def test_the_dashboard_serves_the_sweeps_study_and_its_trials(tmp_path: Path):
    import optuna

    sweep_dir = tmp_path / "sweep"
    sweep_dir.mkdir()
    storage = f"journal:{sweep_dir / 'study.journal'}"
    study = optuna.create_study(
        study_name="mlp-wine", storage=open_storage(storage), direction="maximize"
    )
    kept, pruned = study.ask(), study.ask()
    kept.report(0.9, 1)
    study.tell(kept, 0.95)
    pruned.report(0.3, 1)
    study.tell(pruned, state=optuna.trial.TrialState.PRUNED)
    config = {"hydra": {"sweeper": {"storage": storage, "study_name": "mlp-wine"}}}
    (sweep_dir / "multirun.yaml").write_text(yaml.safe_dump(config))
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "practicum.search.dashboard", str(sweep_dir), "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        try:
            return urllib.request.urlopen(f"{base}/api/studies", timeout=2).status == 200
        except OSError:
            return server.poll() is not None

    try:
        wait_for(answers, timeout=60, what="the dashboard to answer")
        assert server.poll() is None, server.stdout.read()
        studies = json.loads(urllib.request.urlopen(f"{base}/api/studies").read())[
            "study_summaries"
        ]
        assert [s["study_name"] for s in studies] == ["mlp-wine"]
        detail = json.loads(
            urllib.request.urlopen(f"{base}/api/studies/{studies[0]['study_id']}").read()
        )
        assert [(t["number"], t["state"]) for t in detail["trials"]] == [
            (0, "Complete"),
            (1, "Pruned"),
        ]
        page = urllib.request.urlopen(f"{base}/dashboard").read().decode()
        assert "<html" in page.lower()
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.slow
def test_two_slots_stay_busy_in_a_real_pruned_search(tmp_path: Path):
    """local_parallel, 2 trials at once, ASHA: no batch barrier, the slots idle at most 10%."""
    sweep_dir = one_sweep(
        tmp_path,
        "search=random",
        "search.n_trials=8",
        "search.pruner=asha",
        "trainer.max_epochs=9",
        "hydra/launcher=local_parallel",
    )
    from practicum.search.sweep import collect_trials
    from practicum.search.sweep_study import schedule

    timing = schedule(sweep_dir, collect_trials(sweep_dir))
    assert timing.slots == 2 and timing.idle is not None
    assert timing.idle <= 0.10, f"slots idle {timing.idle:.1%}"
    statuses = [summary(sweep_dir / str(job))["status"] for job in range(8)]
    assert statuses.count("pruned") >= 1 and "failed" not in statuses
    assert not math.isnan(timing.wall_s)
