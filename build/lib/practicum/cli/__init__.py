"""The command line: `python train.py`, `eval.py` and `predict.py` (entry.py), and the modes a
train command can pick (modes.py: one run, repeats, a study, checks, the range test, the
autopilot). `main(argv)` runs any of them in the caller's process and returns the exit code;
`invoke(command, *args)` also captures what it printed (in_process.py)."""

from practicum.cli.entry import evaluate, main, predict, run_train_config, train
from practicum.cli.in_process import Completed, invoke

__all__ = ["Completed", "evaluate", "invoke", "main", "predict", "run_train_config", "train"]
