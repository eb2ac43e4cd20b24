"""Evaluate a checkpoint on the test split: `python eval.py ckpt_path=logs/.../checkpoints/last.ckpt`."""

from practicum.cli.entry import evaluate

if __name__ == "__main__":
    evaluate()
