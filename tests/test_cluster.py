"""What a trial asks a SLURM cluster for, checked without one: the launcher's requests follow the
trial's config, a request no node can satisfy is one line, the requeue warning is checked against
the time limit, ranks log apart, and two sweeps share one Optuna study through a journal file.
(tests/test_slurm.py runs sweeps on a real cluster.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig

from practicum.config import register_schemas
from practicum.errors import UserError
from practicum.platform.cluster import (
    NodeGroup,
    check_fits,
    check_signal_delay,
    parse_gpus,
    parse_time_limit,
    trials_at_once,
)
from practicum.platform.files import register_resolvers
from practicum.platform.ranks import log_suffix

from conftest import CONF_DIR, ROOT, without_slurm


def launcher_request(*overrides: str) -> dict:
    """hydra.launcher and the sweeper's batch size as `python train.py -m <overrides>` gets them."""
    register_schemas()
    register_resolvers()
    with initialize_config_dir(str(CONF_DIR), job_name="train"):
        cfg = compose("train", overrides=list(overrides), return_hydra_config=True)
        HydraConfig.instance().set_config(cfg)
        launcher = dict(cfg.hydra.launcher)
        launcher["batch"] = cfg.hydra.sweeper.get("n_jobs")
    return launcher


def test_a_cpu_trial_asks_for_no_gpu_and_a_cpu_per_process():
    request = launcher_request("hydra/launcher=slurm", "search=random")
    assert request["gpus_per_node"] is None
    assert request["tasks_per_node"] == 1 and request["cpus_per_task"] == 1
    assert request["batch"] == request["array_parallelism"] == 16  # a search fills the array


def test_a_gpu_trial_asks_for_its_devices_and_its_workers():
    request = launcher_request(
        "hydra/launcher=slurm",
        "trainer=gpu",
        "trainer.devices=4",
        "data=image_folder",
        "data.num_workers=5",
        "search=random",
        "search.n_jobs=3",
    )
    assert request["gpus_per_node"] == 4 and request["tasks_per_node"] == 4
    assert request["cpus_per_task"] == 6  # the training process and 5 workers
    assert request["batch"] == 3  # search.n_jobs, when set, wins


def test_auto_workers_ask_for_cpus_and_use_the_tasks(monkeypatch: pytest.MonkeyPatch):
    from practicum.data.images import default_workers

    request = launcher_request("hydra/launcher=slurm", "data=image_folder")
    assert request["cpus_per_task"] == 5  # num_workers: auto -> 4 loader processes and the step
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "5")
    assert default_workers() == 4  # in the job: the task's CPUs, not the node's


def test_ddp_on_cpus_asks_for_one_task_per_process():
    request = launcher_request("hydra/launcher=slurm", "trainer=ddp_cpu")
    assert request["tasks_per_node"] == 2 and request["gpus_per_node"] is None


def test_trials_at_once_follow_the_launcher():
    assert trials_at_once(None, None, None) == 1  # the basic launcher: one at a time
    assert trials_at_once(None, 4, None) == 4  # local_parallel's n_jobs
    assert trials_at_once(None, None, 32) == 32  # slurm's array_parallelism
    assert trials_at_once(2, 4, None) == 2
    assert trials_at_once(None, -1, None) >= 1


@pytest.mark.parametrize(
    ("text", "minutes"),
    [
        ("infinite", float("inf")),
        ("30:00", 30),
        ("2:00:00", 120),
        ("1-00:00:00", 1440),
        ("1-12:30:00", 2190),
        ("45", 45),
    ],
)
def test_slurm_time_limits_read_as_minutes(text: str, minutes: float):
    assert parse_time_limit(text) == minutes


@pytest.mark.parametrize(
    ("gres", "gpus"),
    [("(null)", 0), ("gpu:4", 4), ("gpu:a100:8(S:0-1)", 8), ("gpu:a100:2,gpu:v100:2", 4)],
)
def test_gpus_read_from_gres(gres: str, gpus: int):
    assert parse_gpus(gres) == gpus


NODES = [
    NodeGroup("cpu", True, 10, cpus=32, memory_mb=128000, gpus=0, time_limit_min=2880),
    NodeGroup("gpu", False, 2, cpus=16, memory_mb=256000, gpus=4, time_limit_min=1440),
]
TRIAL = {"nodes": 1, "tasks_per_node": 1, "cpus_per_task": 2, "mem_gb": 4, "timeout_min": 60}


def test_a_request_that_fits_passes():
    check_fits(TRIAL, NODES)
    check_fits({**TRIAL, "partition": "gpu", "gpus_per_node": 4, "tasks_per_node": 4}, NODES)
    check_fits(TRIAL, None)  # sinfo could not say: nothing to check against


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"cpus_per_task": 64}, ["64 CPUs per node", "at most 32 CPUs", "cpus_per_task=64"]),
        ({"mem_gb": 512}, ["512 GB per node (mem_gb)", "at most 125 GB"]),
        ({"gpus_per_node": 1}, ["1 GPUs", "the default partition cpu", "at most 0 GPUs"]),
        ({"partition": "gpu", "gpus_per_node": 8}, ["partition gpu", "at most 4 GPUs"]),
        ({"partition": "gpu", "nodes": 3}, ["3 nodes (trainer.num_nodes)", "it has 2"]),
        ({"partition": "big"}, ["partition=big is not a partition", "cpu, gpu"]),
        ({"partition": "gpu", "timeout_min": 2000}, ["timeout_min=2000", "1440 min"]),
    ],
)
def test_a_request_no_node_can_satisfy_is_one_line(change: dict, words: list[str]):
    with pytest.raises(UserError) as refused:
        check_fits({**TRIAL, **change}, NODES)
    message = str(refused.value)
    assert "\n" not in message
    assert all(word in message for word in words), message


def test_the_requeue_warning_must_come_well_before_the_time_limit():
    check_signal_delay({"timeout_min": 240, "signal_delay_s": 60})
    with pytest.raises(UserError, match=r"signal_delay_s=120 .*timeout_min=1 \(60 s\)"):
        check_signal_delay({"timeout_min": 1, "signal_delay_s": 120})


def test_each_rank_logs_to_its_own_file(monkeypatch: pytest.MonkeyPatch):
    for name in ("RANK", "SLURM_PROCID", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert log_suffix() == ""
    monkeypatch.setenv("SLURM_PROCID", "1")
    assert log_suffix() == ".rank1"
    monkeypatch.setenv("RANK", "3")  # torchrun's global rank wins
    assert log_suffix() == ".rank3"


@pytest.mark.slow
def test_two_sweeps_add_trials_to_one_study_at_once(tmp_path: Path):
    """Two sweep processes, started together, share a study through Optuna's journal file."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    journal = tmp_path / "studies" / "wine.log"
    command = [
        sys.executable,
        str(ROOT / "train.py"),
        "-m",
        "search=random",
        "data=wine",
        "model=mlp",
        "trainer.max_epochs=2",
        "diagnosis.baseline_model=null",
        "search.n_trials=2",
        f"search.storage=journal:{journal}",
        "search.study_name=shared",
        f"paths.log_dir={tmp_path / 'logs'}",
    ]
    env = without_slurm(
        {"PYTHONWARNINGS": "ignore", "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"}
    )
    sweeps = [
        subprocess.Popen(
            [*command, f"search.seed={seed}"],
            cwd=ROOT,
            env=env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for seed in (0, 1)
    ]
    for sweep in sweeps:
        out, err = sweep.communicate(timeout=600)
        assert sweep.returncode == 0, err[-3000:]
    study = optuna.load_study(
        study_name="shared", storage=JournalStorage(JournalFileBackend(str(journal)))
    )
    assert len(study.trials) == 4
    assert sorted(t.number for t in study.trials) == [0, 1, 2, 3]
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    assert len(list((tmp_path / "logs" / "train" / "multiruns").iterdir())) == 2
