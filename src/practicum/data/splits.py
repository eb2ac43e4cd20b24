"""Seeded train/val/test splits of labelled examples, and the checks that data can be split at all.

A file too small for its splits, a class with too few examples, or a single class is one line
naming the file (`what`) before anything trains, not a traceback from the splitting code.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from sklearn.model_selection import train_test_split

from practicum.errors import UserError

# one example of each class for each of train, val and test
MIN_PER_CLASS = 3
MIN_TRAIN = 2  # batch norm cannot train on a batch of one
SHOWN = 4  # offenders named in a message; the rest are counted


def split_off(
    indices: np.ndarray, labels: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(kept, held out) of `indices`, `fraction` of them held out; stratified by `labels[indices]`
    where every class can have a place on both sides, else a plain seeded shuffle."""
    held = math.ceil(fraction * len(indices))
    return train_test_split(
        indices,
        test_size=held,
        random_state=seed,
        stratify=_strata(labels[indices], held, len(indices) - held),
    )


def subset(indices: np.ndarray, labels: np.ndarray, size: int, seed: int) -> np.ndarray:
    """`size` of `indices`, stratified and nested: the first `size` of `nested_order`, sorted."""
    if size >= len(indices):
        return indices
    return np.sort(nested_order(indices, labels, seed)[:size])


def nested_order(indices: np.ndarray, labels: np.ndarray, seed: int) -> np.ndarray:
    """`indices` in a seeded order whose every prefix is stratified: each class shuffled, the
    classes interleaved in proportion to their counts. A smaller subset is then inside every larger
    one, so a learning curve adds examples as it grows instead of drawing new ones."""
    rng = np.random.default_rng(seed)
    indices = np.sort(indices)  # the set decides the order, not the order it came in
    classes = labels[indices]
    keys = np.empty(len(indices))
    for label in np.unique(classes):
        members = np.flatnonzero(classes == label)
        # the k-th of a class's n examples sits at (k + 1/2) / n (Webster's apportionment): every
        # prefix holds each class within about one example of its share
        keys[members] = (rng.permutation(len(members)) + 0.5) / len(members)
    ties = rng.random(len(indices))  # classes of equal size tie: no class goes first by its label
    return indices[np.lexsort((ties, keys))]


def _strata(labels: np.ndarray, held: int, kept: int) -> np.ndarray | None:
    counts = np.unique(labels, return_counts=True)[1]
    enough = len(counts) and counts.min() >= 2 and len(counts) <= min(held, kept)
    return labels if enough else None


def split_sizes(count: int, val_fraction: float, test_fraction: float | None) -> dict[str, int]:
    """How many examples each split gets from `count` (test_fraction None: the test split is
    separate), as `split_off` cuts them: test first, then val's share of the rest."""
    test = 0 if test_fraction is None else math.ceil(test_fraction * count)
    val = math.ceil(val_share(val_fraction, test_fraction) * (count - test))
    return {"train": count - test - val, "val": val, "test": test}


def val_share(val_fraction: float, test_fraction: float | None) -> float:
    """The share of what is left after the test split that makes `val_fraction` of the whole."""
    return val_fraction / (1.0 - (test_fraction or 0.0))


def check_examples(
    what: str,
    labels: np.ndarray,
    class_names: Sequence[str],
    val_fraction: float,
    test_fraction: float | None,
    label_hint: str = "",
) -> None:
    """`what` can be split into train/val(/test) with every class in each: enough examples, at
    least two classes, `MIN_PER_CLASS` examples of each (two where the test split is separate)."""
    count = len(labels)
    splits = "train and val" if test_fraction is None else "train, val and test"
    if count == 0:
        raise UserError(f"{what} holds no examples: add some ({MIN_PER_CLASS} per class at least)")
    sizes = split_sizes(count, val_fraction, test_fraction)
    if sizes["train"] < MIN_TRAIN:
        fractions = f"data.val_fraction={val_fraction:g}" + (
            "" if test_fraction is None else f" and data.test_fraction={test_fraction:g}"
        )
        noun = "example" if count == 1 else "examples"
        raise UserError(
            f"{what} has {count} {noun}, too few for {splits} splits with {fractions} (they "
            f"leave {max(sizes['train'], 0)} to train on, {MIN_TRAIN} at least): add examples "
            f"({MIN_PER_CLASS} per class at least) or lower the fractions"
        )
    counts = np.bincount(labels, minlength=len(class_names))
    present = [name for name, n in zip(class_names, counts, strict=True) if n]
    if len(present) < 2:
        raise UserError(
            f"{what} has one class only ({present[0]!r}): a classifier needs two at least; "
            f"add examples of the other classes{label_hint}"
        )
    least = MIN_PER_CLASS if test_fraction is not None else MIN_PER_CLASS - 1
    few = [(name, int(n)) for name, n in zip(class_names, counts, strict=True) if 0 < n < least]
    if few:
        shown = ", ".join(f"{name!r} ({n})" for name, n in few[:SHOWN])
        more = f" and {len(few) - SHOWN} more" if len(few) > SHOWN else ""
        raise UserError(
            f"{what} has too few examples of class {shown}{more}: each class needs {least} at "
            f"least, one for each of the {splits} splits: add examples of it or remove the "
            f"class{label_hint}"
        )


def rows_named(indices: Sequence[int], name: str = "rows") -> str:
    """`rows 3, 17, 20, 41 (and 2 more)`: the first few offenders of a check, counted after that."""
    shown = ", ".join(str(i) for i in indices[:SHOWN])
    more = f" (and {len(indices) - SHOWN} more)" if len(indices) > SHOWN else ""
    return f"{name} {shown}{more}"
