"""Build every object of a run from its config: the one place `train` and `eval` instantiate things."""

from __future__ import annotations

import contextlib
import os
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.loggers import CSVLogger, Logger
from lightning.pytorch.profilers import PassThroughProfiler
from omegaconf import DictConfig, OmegaConf, open_dict

from practicum.config.trust import instantiate
from practicum.data.in_memory import InMemoryClassificationData
from practicum.errors import UserError, find_user_error
from practicum.methodology.callbacks import CodeFactsRecorder, StepLosses
from practicum.platform import gpu
from practicum.run import wandb_runs
from practicum.run.checkpoints import AtomicCheckpointIO, BackgroundCheckpointIO, RunCSVLogger
from practicum.run.lightning_output import ModelTable, quiet_lightning
from practicum.run.pruning import trial_pruning
from practicum.tasks.base import Task


def skip_gpu_probe_without_gpu() -> None:
    """`import lightning` sets PYTORCH_NVML_BASED_CUDA_CHECK=1; on a CUDA build of torch with no GPU,
    every optimizer step then probes the NVIDIA driver (0.23 -> 0.40 ms per Adam step here)."""
    import torch

    if os.environ.get("PYTORCH_NVML_BASED_CUDA_CHECK") == "1" and not torch.cuda.is_available():
        del os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"]


class NoProfiler(PassThroughProfiler):
    """No profiling, as Lightning's default, without its cost: Lightning enters `profile()` around
    every hook of every callback, dozens of times a step, and the default builds a generator-based
    context manager each time."""

    _nothing = contextlib.nullcontext()

    def profile(self, action_name: str) -> contextlib.nullcontext:
        return self._nothing


def constructor_message(exc: BaseException) -> str:
    """The constructor's own words: the innermost cause's first line (Hydra wraps it in its
    InstantiationException, with the node's key on a line of its own)."""
    while exc.__cause__ is not None and str(exc.__cause__).strip():
        exc = exc.__cause__
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def build(node: Any, where: str, **kwargs: Any) -> Any:
    """`instantiate` for the object at `where` (trainer, data, model.net, ...): any exception its
    constructor raises becomes one line, `<where>: <the constructor's own message>`, which ends
    the run before it trained, its directory removed (cli/entry.py)."""
    with one_line(where):
        return instantiate(node, **kwargs)


@contextlib.contextmanager
def one_line(where: str) -> Any:
    """Any exception raised inside becomes `<where>: <its own message>` (a UserError inside the
    chain is raised as it is); memory errors and interrupts pass through."""
    try:
        yield
    except (UserError, MemoryError):
        raise
    except Exception as exc:
        found = find_user_error(exc)
        if found is not None:
            raise found from exc
        raise UserError(f"{where}: {constructor_message(exc)}") from exc


def build_datamodule(cfg: DictConfig) -> InMemoryClassificationData:
    """Build the data, load it, and fill in `data.num_classes`/`input_shape` left as `auto`."""
    datamodule = build(cfg.data, "data", _convert_="all")
    with one_line("data"):
        datamodule.setup()
    with open_dict(cfg):
        for key in ("num_classes", "input_shape"):
            if cfg.data.get(key) == "auto":
                cfg.data[key] = getattr(datamodule, key)
    return datamodule


def build_task(cfg: DictConfig, with_optimizer: bool = True) -> Task:
    """The LightningModule: the model group's task around its net, wired to the optimizer and scheduler."""
    wiring: dict[str, Any] = {}
    if with_optimizer:
        wiring["optimizer"] = build(cfg.optimizer, "optimizer")
        wiring["scheduler"] = build(cfg.scheduler, "scheduler", _convert_="all")
    task = build(cfg.model, "model", _convert_="all", **wiring)
    if with_optimizer:  # evaluation runs batch norm in eval mode: any batch size does
        _require_batches_for_batch_norm(cfg, task)
    if cfg.get("compile"):
        # in place: the state dict keeps its keys, so checkpoints load with or without compiling
        task.net.compile()
    task.run_config = OmegaConf.to_container(cfg, resolve=True)
    return task


def _require_batches_for_batch_norm(cfg: DictConfig, task: Task) -> None:
    """Batch norm cannot train on a batch of one example: say so before training, not mid-epoch."""
    import torch

    batch_size = (cfg.get("data") or {}).get("batch_size")
    norms = (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d, torch.nn.BatchNorm3d)
    if batch_size == 1 and any(isinstance(m, norms) for m in task.modules()):
        has_knob = "batch_norm" in ((cfg.get("model") or {}).get("net") or {})
        fix = " or model.net.batch_norm=false" if has_knob else ""
        raise UserError(
            f"data.batch_size=1 with model={cfg.get('parts', {}).get('model')}, whose batch norm "
            f"cannot train on batches of one example: use data.batch_size=2 or more{fix}"
        )


def build_callbacks(cfg: DictConfig) -> list[pl.Callback]:
    entries = cfg.get("callbacks") or {}
    return [build(node, f"callbacks.{name}") for name, node in entries.items() if node is not None]


def build_loggers(cfg: DictConfig, resume_step: int | None = None) -> list[Logger]:
    """The chosen loggers, plus the CSV logger that every run directory gets (resuming, its
    metrics.csv keeps the rows logged before `resume_step` and continues after them)."""
    entries = {name: node for name, node in (cfg.get("logger") or {}).items() if node is not None}
    if "wandb" in entries:
        wandb_runs.offline_without_credentials()
    loggers = [
        build(
            node, f"logger.{name}", **(wandb_runs.sweep_identity(node) if name == "wandb" else {})
        )
        for name, node in entries.items()
    ]
    if not any(isinstance(logger, (CSVLogger, RunCSVLogger)) for logger in loggers):
        loggers.insert(0, RunCSVLogger(save_dir=cfg.paths.output_dir, name="", version=""))
    for logger in loggers:
        if isinstance(logger, RunCSVLogger):
            logger.keep_before_step = resume_step
    flat = _flat_config(cfg)
    for logger in loggers:
        logger.log_hyperparams(flat)
    return loggers


def build_trainer(
    cfg: DictConfig, quiet: bool = False, resume_step: int | None = None
) -> pl.Trainer:
    """The training Trainer; `quiet=True` gives one for evaluation: no logging, checkpoints or bar."""
    quiet_lightning(str(cfg.paths.get("output_dir") or ""))
    skip_gpu_probe_without_gpu()
    _require_accelerator(str(cfg.trainer.get("accelerator", "auto")))
    profiler = {} if cfg.trainer.get("profiler") else {"profiler": NoProfiler()}
    # `precision: mixed` (trainer=gpu): bf16 where the GPU supports it, else fp16
    precision = gpu.trainer_precision(cfg.trainer.get("precision"))
    if quiet:
        return build(
            cfg.trainer,
            "trainer",
            **profiler,
            **precision,
            logger=False,
            callbacks=[],
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            plugins=slurm_environment([]),
        )
    loggers = build_loggers(cfg, resume_step)
    # a sweep's trials share one terminal: the same model table once per trial is noise
    in_sweep = wandb_runs.sweep_trial() is not None and not cfg.get("verbose")
    summary = {"enable_model_summary": False} if in_sweep else {}
    callbacks = build_callbacks(cfg)
    summarized = any(isinstance(c, pl.callbacks.ModelSummary) for c in callbacks)
    if not in_sweep and cfg.trainer.get("enable_model_summary", True) and not summarized:
        callbacks.append(ModelTable())
    # the within-epoch loss curve and the loss at init, which the diagnosis reads
    if not any(isinstance(c, StepLosses) for c in callbacks):
        callbacks.append(StepLosses())
    # the code facts (frozen parameters, probabilities as outputs, dead units, ...): code_defect
    if (cfg.get("diagnosis") or {}).get("code_facts", True):
        callbacks.append(CodeFactsRecorder(probe=not cfg.get("compile")))
    # the trainer's own callbacks (trainer=gpu: channels-last convnets)
    callbacks += [
        build(node, f"trainer.callbacks[{i}]")
        for i, node in enumerate(cfg.trainer.get("callbacks") or [])
    ]
    # a search's trial reports each epoch to its study and stops when the pruner says so
    callbacks += trial_pruning(cfg)
    plugins = [
        checkpoint_io(cfg),
        *(
            build(p, f"trainer.plugins[{i}]")
            for i, p in enumerate(cfg.trainer.get("plugins") or [])
        ),
    ]
    plugins += slurm_environment(plugins)
    return build(
        cfg.trainer,
        "trainer",
        callbacks=callbacks,
        logger=loggers,
        plugins=plugins,
        **profiler,
        **precision,
        **summary,
    )


def checkpoint_io(cfg: DictConfig) -> AtomicCheckpointIO:
    """Checkpoints written on a background thread; on the training thread where a logger uploads
    each checkpoint file as soon as it is saved (`log_model`), so that it finds the file whole."""
    loggers = (cfg.get("logger") or {}).values()
    if any(node is not None and node.get("log_model") for node in loggers):
        return AtomicCheckpointIO()
    return BackgroundCheckpointIO()


def _require_accelerator(accelerator: str) -> None:
    import torch

    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise UserError(
            f"trainer.accelerator={accelerator} but no CUDA GPU is visible: use trainer=cpu or trainer.accelerator=auto"
        )


def _flat_config(cfg: DictConfig) -> dict[str, Any]:
    """`{"optimizer.lr": 0.001, ...}`: the whole config as hyperparameters for the loggers."""
    flat: dict[str, Any] = {}

    def walk(node: Any, prefix: str) -> None:
        for key, value in node.items():
            if isinstance(value, dict):
                walk(value, f"{prefix}{key}.")
            else:
                flat[f"{prefix}{key}"] = value

    walk(OmegaConf.to_container(cfg, resolve=True), "")
    return flat


def require_file(path: str | None, what: str, hint: str) -> str:
    if not path or not os.path.isfile(path):
        raise UserError(f"{what}={path!r} does not exist: {hint}")
    return path


def slurm_environment(plugins: list[Any]) -> list[Any]:
    """Inside a SLURM job, Lightning's SLURM environment without its auto-requeue: the launcher's
    signal handler (submitit) owns the requeue, and a second handler would requeue twice."""
    from lightning.pytorch.plugins.environments import ClusterEnvironment, SLURMEnvironment

    if not SLURMEnvironment.detect() or any(isinstance(p, ClusterEnvironment) for p in plugins):
        return []
    return [SLURMEnvironment(auto_requeue=False)]
