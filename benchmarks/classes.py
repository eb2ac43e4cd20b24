"""Section `classes`: what a classifier's evaluation costs as the classes grow. The macro F1 of a
split (`MacroF1`: update and compute) and its standard errors (`classification_errors`: accuracy,
loss and a 200-resample bootstrap of macro F1) on the predictions of N examples over C classes, at
C = 10, 1,000 and 10,000 and N = 20,000 and 40,000, in this process, the best of a few repeats.
Both must grow with examples + classes, never with classes squared (a confusion matrix)."""

from __future__ import annotations

import time
from typing import Any

from rich.table import Table

from common import Settings, mark

CLASSES = (10, 1_000, 10_000)
TARGET = 2.0  # 10,000 classes against 10, at the same examples; and twice the examples


def run(settings: Settings, earlier: dict[str, Any], log=print) -> dict[str, Any]:
    import torch

    from practicum.tasks.classification import MacroF1, classification_errors

    repeats = settings.count(3, 1)
    examples = (settings.size(20_000, 5_000), settings.size(40_000, 10_000))
    cells = []
    for n in examples:
        for c in CLASSES:
            generator = torch.Generator().manual_seed(n + c)
            targets = torch.randint(0, c, (n,), generator=generator)
            hit = torch.rand(n, generator=generator) < 0.8
            preds = torch.where(hit, targets, torch.randint(0, c, (n,), generator=generator))
            losses = torch.rand(n, generator=generator)
            f1_s, errors_s = [], []
            for _ in range(repeats):
                started = time.perf_counter()
                metric = MacroF1(c)
                for part in range(0, n, 256):  # updated batch by batch, as in an epoch
                    metric.update(preds[part : part + 256], targets[part : part + 256])
                value = float(metric.compute())
                f1_s.append(time.perf_counter() - started)
                started = time.perf_counter()
                classification_errors("test", preds, targets, losses, c)
                errors_s.append(time.perf_counter() - started)
            cell = {"examples": n, "classes": c, "f1_s": min(f1_s), "errors_s": min(errors_s)}
            cell["macro_f1"] = value
            cells.append(cell)
            log(
                f"classes {c} x {n} examples: macro F1 {cell['f1_s']:.3f} s, "
                f"standard errors {cell['errors_s']:.3f} s"
            )

    def seconds(n: int, c: int) -> float:
        cell = next(x for x in cells if x["examples"] == n and x["classes"] == c)
        return cell["f1_s"] + cell["errors_s"]

    small, large = examples
    by_classes = seconds(small, CLASSES[-1]) / seconds(small, CLASSES[0])
    by_examples = seconds(large, CLASSES[-1]) / seconds(small, CLASSES[-1])
    return {
        "repeats": repeats,
        "cells": cells,
        "ratio_classes": by_classes,
        "ratio_examples": by_examples,
        "target": TARGET,
        "meets_target": by_classes <= TARGET and by_examples <= TARGET * 1.25,
    }


def table(result: dict[str, Any]) -> Table:
    table = Table(
        title="classes: a split's macro F1 and its standard errors (a 200-resample bootstrap), "
        f"seconds, best of {result['repeats']}",
        caption=f"Target: {CLASSES[-1]:,} classes <= {TARGET:g}x the time of {CLASSES[0]} at the "
        f"same examples ({result['ratio_classes']:.2f}x), twice the examples <= "
        f"{TARGET * 1.25:g}x ({result['ratio_examples']:.2f}x): "
        f"{mark(result['meets_target'])}",
    )
    for column in ("examples", "classes", "macro F1, s", "standard errors, s"):
        table.add_column(column, justify="right")
    for cell in result["cells"]:
        table.add_row(
            f"{cell['examples']:,}",
            f"{cell['classes']:,}",
            f"{cell['f1_s']:.3f}",
            f"{cell['errors_s']:.3f}",
        )
    return table
