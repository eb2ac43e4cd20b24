"""What every practicum data module offers the run flow: one `loader(split)` behind Lightning's hooks."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

import lightning.pytorch as pl
import numpy as np

from practicum.data.position import Position, batches_done
from practicum.errors import UserError

SPLITS = ("train", "val", "test")


class SplitDataModule(pl.LightningDataModule):
    """Three named splits, each behind `loader(split, shuffle)`; training shuffles, evaluation never.

    Subclasses implement `loader` and `split_sizes`: the run flow evaluates every split through
    `loader`, and the diagnosis weighs a val/test gap against the sampling noise of the sizes.
    """

    # the kind of examples it provides; the config check refuses a model whose task (or net)
    # declares another kind (Task.problem)
    problem: ClassVar[str] = "classification"

    @classmethod
    def path_hint(cls, args: Mapping[str, Any]) -> str:
        """What to do when `data.path` or `data.root` does not exist (`args`: the config's arguments)."""
        return "check the path"

    @classmethod
    def config_problem(cls, args: Mapping[str, Any]) -> str | None:
        """A mistake across the config's arguments (`args`), said in one line before anything is
        built; None when there is none. Subclasses add their own rules to these."""
        val, test = args.get("val_fraction"), args.get("test_fraction")
        if _number(val) and _number(test) and val + test >= 1:
            return (
                f"data.val_fraction={val:g} and data.test_fraction={test:g} leave no examples to "
                "train on: keep their sum below 1 (for example data.val_fraction=0.15 "
                "data.test_fraction=0.15)"
            )
        return None

    def loader(self, split: str, shuffle: bool = False) -> Iterable:
        """Batches of one split ("train", "val" or "test")."""
        raise NotImplementedError(f"{type(self).__name__} must implement loader(split, shuffle)")

    def split_sizes(self) -> dict[str, int]:
        """Examples per split, e.g. {"train": 1257, "val": 270, "test": 270}."""
        raise NotImplementedError(f"{type(self).__name__} must implement split_sizes()")

    def labels(self, split: str) -> np.ndarray:
        """The class label of every example of a split, in the order `loader(split)` yields them."""
        raise NotImplementedError(
            f"{type(self).__name__} has no class labels per example: labels(split) is for "
            "classification data"
        )

    # how the data audit compares examples across splits for leakage (methodology/leakage.py):
    # "near" rows of numbers, "exact" sequences, "image" perceptual hashes; None: not compared
    duplicate_rule: ClassVar[str | None] = None

    def origins(self, split: str) -> list[str]:
        """Where each example of a split comes from, as the user finds it, in `loader(split)`
        order: a CSV's 0-based data row, an index in an array or dataset as loaded, an image path
        relative to `data.root`. The data audit names flagged examples by it."""
        raise NotImplementedError(
            f"{type(self).__name__} cannot say where its examples come from: implement "
            "origins(split) on it, or pass audit.enabled=false"
        )

    def example(self, split: str, index: int) -> Any:
        """The input of one example of a split (a tensor, as the loader gives it before batching)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement example(split, index)")

    # where the shuffled training batches stand (data/position.py): saved in every checkpoint
    _train_position: Position | None = None
    _resume_position: dict[str, Any] | None = None

    def train_dataloader(self) -> Iterable:
        loader = self.loader("train", shuffle=True)
        position = getattr(loader, "position", None)
        if position is None:  # a DataLoader: its sampler's
            position = getattr(getattr(loader, "sampler", None), "position", None)
        if isinstance(position, Position):
            if self._resume_position is not None:  # resuming: the saved order, from its batch
                position.restore(self._resume_position)
                self._resume_position = None
            self._train_position = position
        return loader

    def state_dict(self) -> dict[str, Any]:
        """Saved in checkpoints: the training batches' order and, in the middle of an epoch, how
        many of its batches are done."""
        if self._train_position is None:
            return {}
        return {"train_position": self._train_position.state(batches_done(self.trainer))}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        position = state_dict.get("train_position")
        if position is None and state_dict.get("shuffle_state") is not None:  # older checkpoints
            position = {"generator": state_dict["shuffle_state"], "passes": 0, "skip": 0}
        self._resume_position = position

    def val_dataloader(self) -> Iterable:
        return self.loader("val")

    def test_dataloader(self) -> Iterable:
        return self.loader("test")


def lone_last_batch(count: int, batch_size: int, shuffle: bool) -> bool:
    """Whether a shuffled (training) pass would end in a batch of one example, which batch norm
    cannot train on: loaders leave it out (`drop_last`), a different example each epoch."""
    return shuffle and count > batch_size and count % batch_size == 1


def require_image(path: str) -> None:
    """A file an image loader can open (its header only, which is cheap: a file cut short fails
    when it is decoded, with its own one line)."""
    from PIL import Image

    limit = Image.MAX_IMAGE_PIXELS
    try:
        with Image.open(path) as image:
            width, height = image.size
    except Image.DecompressionBombError as exc:
        raise UserError(
            f"{path} is too large to decode safely ({exc}): shrink it, or remove the file"
        ) from exc
    except (OSError, ValueError) as exc:
        raise UserError(
            f"{path} is not a readable image ({exc}): replace or remove the file"
        ) from exc
    if limit is not None and width * height > limit:
        raise UserError(
            f"{path} is too large to decode safely ({width}x{height} = {width * height:,} pixels, "
            f"more than {limit:,}): shrink it, or remove the file"
        )


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
