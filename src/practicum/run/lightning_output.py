"""What Lightning prints during a run, trimmed to what a user reads: warnings that do not apply to
practicum's runs, its accelerator lines and logger advert once per run (a run builds several
trainers: fit, evaluation, the linear baseline), and a model table without a FLOPs column that
would read 0 on every row."""

from __future__ import annotations

import logging
import warnings
from typing import Any

from lightning.pytorch.callbacks import RichModelSummary
from lightning.pytorch.utilities.model_summary import get_human_readable_count

# Lightning's advice that does not apply to practicum's runs; everything else still shows.
IGNORED_WARNINGS = (
    r".*isinstance\(treespec, LeafSpec\)` is deprecated.*",  # Lightning internals on newer torch
    r".*is smaller than the logging interval.*",  # metrics are logged per epoch, not per step
    r".*callbacks used to create the checkpoint need to be provided.*",  # evaluation needs none
    # practicum's tasks skip the transfer on CPU on purpose (Task.transfer_batch_to_device)
    r".*overridden `transfer_batch_to_device` in `LightningModule`.*",
    # the run directory already holds .hydra/ and the log; the CSV logger only writes metrics.csv
    r".*exists and is not empty. Previous log files in this directory will be deleted.*",
    # practicum's training loaders resume mid-epoch through the data module (data/position.py)
    r".*ended before the epoch ended and your dataloader is not resumable.*",
    # epoch metrics come from torchmetrics, whose compute() already syncs them across processes
    r".*when logging on epoch level in distributed setting to accumulate the metric.*",
)
# the lines every Trainer logs when it is built
ONCE_PER_RUN = ("GPU available:", "TPU available:", "💡 Tip:")
LIGHTNING_INFO = "lightning.pytorch.utilities.rank_zero"


class OncePerRun(logging.Filter):
    """Lets each of Lightning's per-trainer lines through once per run directory."""

    def __init__(self) -> None:
        super().__init__()
        self.run: str | None = None
        self.seen: set[str] = set()

    def start(self, run: str) -> None:
        if run != self.run:
            self.run, self.seen = run, set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if not message.startswith(ONCE_PER_RUN):
            return True
        if message in self.seen:
            return False
        self.seen.add(message)
        return True


def quiet_lightning(run: str) -> None:
    """Apply the filters above for the run writing to `run` (its directory)."""
    for pattern in IGNORED_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern)
    # `import lightning` adds its own console handler; under Hydra the root logger already writes
    # the run's log file, so Lightning's INFO chatter goes there instead of the terminal.
    if logging.getLogger().hasHandlers():
        logging.getLogger("lightning").handlers.clear()
    logger = logging.getLogger(LIGHTNING_INFO)
    once = next((f for f in logger.filters if isinstance(f, OncePerRun)), None)
    if once is None:
        once = OncePerRun()
        logger.addFilter(once)
    once.start(run)


class ModelTable(RichModelSummary):
    """Lightning's rich model table; its FLOPs column and total only where a FLOP was counted
    (Lightning counts them only for a model with an `example_input_array`)."""

    @staticmethod
    def summarize(
        summary_data: list[tuple[str, list[str]]],
        total_parameters: int,
        trainable_parameters: int,
        model_size: float,
        total_training_modes: dict[str, int],
        total_flops: int,
        **summarize_kwargs: Any,
    ) -> None:
        if total_flops:
            RichModelSummary.summarize(
                summary_data,
                total_parameters,
                trainable_parameters,
                model_size,
                total_training_modes,
                total_flops,
                **summarize_kwargs,
            )
            return
        from rich import get_console
        from rich.table import Table

        columns = [(name, values) for name, values in summary_data if name != "FLOPs"]
        table = Table(header_style=summarize_kwargs.get("header_style", "bold magenta"))
        for name, _ in columns:
            right = name not in (" ", "Name", "Type", "Mode")
            table.add_column(
                name, justify="right" if right else "left", style="dim" if name == " " else None
            )
        for row in zip(*(values for _, values in columns), strict=True):
            table.add_row(*row)
        grid = Table.grid(expand=True)
        grid.add_column()
        frozen = total_parameters - trainable_parameters
        for label, value in (
            ("Trainable params", get_human_readable_count(int(trainable_parameters))),
            ("Non-trainable params", get_human_readable_count(int(frozen))),
            ("Total params", get_human_readable_count(int(total_parameters))),
            ("Total estimated model params size (MB)", f"{model_size:,.3f}"),
            ("Modules in train mode", total_training_modes["train"]),
            ("Modules in eval mode", total_training_modes["eval"]),
        ):
            grid.add_row(f"[bold]{label}[/]: {value}")
        console = get_console()
        console.print(table)
        console.print(grid)
