"""One run of one config: build (build.py) -> fit (one_run.py) -> evaluate (evaluate.py) ->
diagnose -> report; resuming (resume.py, checkpoints.py), the linear baseline (baseline.py),
predictions (predict.py) and W&B runs (wandb_runs.py). Importing the package is cheap: the
modules that import torch load when they are named."""
