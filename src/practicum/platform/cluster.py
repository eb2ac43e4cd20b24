"""What a trial asks a SLURM cluster for, and whether the cluster can give it.

The requests follow the trial's config (conf/hydra/launcher/slurm.yaml): GPUs only when the trainer
runs on GPUs, one task per device, a CPU for the training process and one per data-loading worker.
Before anything is submitted, the request is held against what the partition's nodes have
(`sinfo`): a job no node can run would pend forever with `Reason=PartitionConfig`, so it is one
line instead. Nothing here imports torch.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from typing import Any

from practicum.errors import UserError

GPU_ACCELERATORS = ("gpu", "cuda")


def _count(devices: Any) -> int:
    """trainer.devices as a number of devices: 2 -> 2, [0, 1] -> 2, "2" -> 2; auto or -1 -> 1."""
    if isinstance(devices, list | tuple):
        return max(1, len(devices))
    text = str(devices).strip()
    if "," in text:
        return len([part for part in text.split(",") if part.strip()])
    return int(text) if text.isdigit() and int(text) > 0 else 1


def gpus(accelerator: Any, devices: Any) -> int | None:
    """GPUs per node: trainer.devices for a GPU trainer, none otherwise (a CPU partition refuses a
    GPU request, and a GPU cluster would hold a GPU idle for a CPU trial)."""
    return _count(devices) if str(accelerator).lower() in GPU_ACCELERATORS else None


def tasks(devices: Any) -> int:
    """One SLURM task per device: Lightning reads the ranks of a DDP run from SLURM."""
    return _count(devices)


# what `data.num_workers: auto` asks a cluster for: 4 loader processes (in the job, `auto` then
# uses the CPUs the task got)
AUTO_WORKERS = 4


def cpus(num_workers: Any) -> int:
    """CPUs per task: one for the training process and one per data-loading worker."""
    if str(num_workers) == "auto":
        return AUTO_WORKERS + 1
    workers = int(num_workers) if str(num_workers).lstrip("-").isdigit() else 0
    return max(0, workers) + 1


def trials_at_once(chosen: Any, n_jobs: Any, array_parallelism: Any) -> int:
    """Trials a search proposes at once: search.n_jobs when set, else what the launcher runs at
    once (local_parallel's n_jobs, -1 meaning one per core; slurm's array_parallelism), else 1."""
    import os

    for value in (chosen, n_jobs, array_parallelism):
        if value is None or str(value) in ("None", "null", ""):
            continue
        number = int(value)
        if number < 0:  # joblib's reading: -1 one per core, -2 all but one
            return max(1, (os.cpu_count() or 1) + 1 + number)
        if number > 0:
            return number
    return 1


def tpe_startup(n_trials: Any) -> int:
    """TPE's random start-up trials for a budget: a quarter of it, at least 3."""
    return max(3, int(n_trials) // 4)


RESOLVERS = {
    "practicum.trials_at_once": trials_at_once,
    "practicum.tpe_startup": tpe_startup,
    "practicum.slurm_gpus": gpus,
    "practicum.slurm_tasks": tasks,
    "practicum.slurm_cpus": cpus,
}


@dataclass
class NodeGroup:
    """One line of `sinfo`: nodes of a partition alike in CPUs, memory, GPUs and time limit."""

    partition: str
    default: bool
    nodes: int
    cpus: int
    memory_mb: int
    gpus: int
    time_limit_min: float  # inf: no limit


def parse_time_limit(text: str) -> float:
    """SLURM's `[days-]hours:minutes:seconds`, `minutes:seconds` or `infinite`, in minutes."""
    text = text.strip()
    if text in ("infinite", "UNLIMITED", "n/a", ""):
        return float("inf")
    days, _, clock = text.rpartition("-")
    parts = [int(p) for p in clock.split(":")]
    while len(parts) < 3:  # mm:ss -> hh:mm:ss; a bare number is minutes
        parts = [0, *parts] if len(parts) == 2 else [0, parts[0], 0]
    hours, minutes, seconds = parts
    return (int(days or 0) * 24 + hours) * 60 + minutes + seconds / 60


def parse_gpus(gres: str) -> int:
    """GPUs per node from sinfo's GRES column: `gpu:4`, `gpu:a100:4(S:0-1)`, `(null)` -> 0."""
    total = 0
    for item in gres.split(","):
        match = re.match(r"gpu(?::[^:(]+)?:(\d+)", item.strip())
        if match:
            total += int(match.group(1))
    return total


def read_partitions(sinfo: str = "sinfo") -> list[NodeGroup] | None:
    """What the cluster's nodes have; None where `sinfo` cannot say (no cluster, an old sinfo)."""
    if shutil.which(sinfo) is None:
        return None
    try:
        out = subprocess.run(
            [sinfo, "--noheader", "--format=%P|%D|%c|%m|%G|%l"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    groups = []
    for line in out.splitlines():
        fields = line.strip().split("|")
        if len(fields) != 6:
            continue
        name, nodes, cpus_, memory, gres, limit = fields
        try:
            groups.append(
                NodeGroup(
                    partition=name.rstrip("*"),
                    default=name.endswith("*"),
                    nodes=int(nodes),
                    cpus=int(cpus_.rstrip("+")),
                    memory_mb=int(memory.rstrip("+")),
                    gpus=parse_gpus(gres),
                    time_limit_min=parse_time_limit(limit),
                )
            )
        except ValueError:
            continue
    return groups


def check_signal_delay(params: dict[str, Any]) -> None:
    """submitit warns a job `signal_delay_s` before its time limit so it can be requeued; a delay
    as long as the limit would warn it before it starts."""
    timeout_s = float(params.get("timeout_min") or 0) * 60
    delay = params.get("signal_delay_s")
    if delay is None or timeout_s <= 0:
        return
    if float(delay) >= timeout_s / 2:
        raise UserError(
            f"hydra.launcher.signal_delay_s={delay} is not shorter than half of "
            f"hydra.launcher.timeout_min={params.get('timeout_min')} ({timeout_s:.0f} s): the "
            "requeue warning would come before the trial has trained; set signal_delay_s below "
            f"{timeout_s / 2:.0f} (for example {max(10, int(timeout_s / 4))}) or raise timeout_min"
        )


def check_fits(params: dict[str, Any], groups: list[NodeGroup] | None) -> None:
    """One line when no node of the partition can run one trial's job, before it is submitted."""
    if not groups:
        return
    names = sorted({g.partition for g in groups})
    asked = params.get("partition")
    if asked:
        chosen = [g for g in groups if g.partition == asked]
        if not chosen:
            raise UserError(
                f"hydra.launcher.partition={asked} is not a partition of this cluster: choose one "
                f"of {', '.join(names)}"
            )
        where = f"partition {asked}"
    else:
        default = [g for g in groups if g.default]
        chosen = default or groups
        where = f"the default partition {chosen[0].partition}" if default else "this cluster"
    tasks_ = int(params.get("tasks_per_node") or 1)
    need = {
        "cpus": int(params.get("cpus_per_task") or 1) * tasks_,
        "memory_mb": int(float(params.get("mem_gb") or 0) * 1024),
        "gpus": int(params.get("gpus_per_node") or 0),
    }
    nodes = int(params.get("nodes") or 1)
    timeout = float(params.get("timeout_min") or 0)
    fitting = [
        g
        for g in chosen
        if g.cpus >= need["cpus"] and g.memory_mb >= need["memory_mb"] and g.gpus >= need["gpus"]
    ]
    if sum(g.nodes for g in fitting) < nodes or not fitting:
        raise UserError(
            f"each trial asks {where} for {_shortfall(need, nodes, tasks_, params, chosen)}: lower "
            "hydra.launcher.cpus_per_task, mem_gb, gpus_per_node or trainer.devices, or pick "
            "another hydra.launcher.partition"
        )
    limit = max(g.time_limit_min for g in fitting)
    if timeout > limit:
        raise UserError(
            f"hydra.launcher.timeout_min={timeout:g} is longer than the time limit of {where} "
            f"({limit:g} min): lower timeout_min (max_num_timeout requeues a trial that runs out)"
        )


def _shortfall(
    need: dict[str, int], nodes: int, tasks_: int, params: dict[str, Any], groups: list[NodeGroup]
) -> str:
    """What the request asks for beyond the largest node, in words."""
    most = {key: max(getattr(g, key) for g in groups) for key in need}
    cpus_asked = f"tasks_per_node={tasks_} x cpus_per_task={params.get('cpus_per_task') or 1}"
    words = {
        "cpus": (f"{need['cpus']} CPUs per node ({cpus_asked})", f"{most['cpus']} CPUs"),
        "memory_mb": (
            f"{need['memory_mb'] // 1024} GB per node (mem_gb)",
            f"{most['memory_mb'] // 1024} GB",
        ),
        "gpus": (f"{need['gpus']} GPUs per node (gpus_per_node)", f"{most['gpus']} GPUs"),
    }
    short = [key for key in need if need[key] > most[key]]
    if short:
        asked = " and ".join(words[key][0] for key in short)
        has = " and ".join(words[key][1] for key in short)
        return f"{asked}, but its nodes have at most {has}"
    count = sum(g.nodes for g in groups)
    if nodes > count:
        return f"{nodes} nodes (trainer.num_nodes), but it has {count}"
    asked = ", ".join(words[key][0] for key in need)
    return f"{asked} at once, but no node of it has all of them"
