"""Worker of the `images` section: one fresh process per worker count.

    python benchmarks/images_worker.py loaders ROOT WORKERS ROUNDS   # practicum vs torchvision loader
    python benchmarks/images_worker.py steps ROOT WORKERS ROUNDS     # step: real loading vs preloaded

WORKERS: a number, or `default` (what conf/data/image_folder.yaml picks on this machine).
"""

from __future__ import annotations

import argparse
import tempfile
import time

from common import compose_config, report, spread
from images import ratio_spread

STEP_IMAGES = 512


def practicum_data(root: str, workers: str, tmp: str, extra: tuple[str, ...] = ()):
    from practicum.run.build import build_datamodule

    overrides = ["data=image_folder", f"data.root={root}", "model=cnn", "trainer.accelerator=cpu"]
    overrides += extra
    if workers != "default":
        overrides.append(f"data.num_workers={workers}")
    cfg = compose_config(tmp, overrides)
    return cfg, build_datamodule(cfg)


def torchvision_loader(root: str, datamodule):
    """What a user would write by hand: ImageFolder + DataLoader, the same transforms and workers."""
    import torch
    from torch.utils.data import DataLoader
    from torchvision import datasets
    from torchvision.transforms import v2

    size = datamodule.image_size
    mean, std = datamodule.finish.stats  # the statistics practicum computed from the images
    transform = v2.Compose(
        [
            v2.ToImage(),
            v2.Resize(size),
            v2.CenterCrop(size),
            v2.RandomCrop(size, padding=size // 8),
            v2.RandomHorizontalFlip(),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(mean, std),
        ]
    )
    dataset = datasets.ImageFolder(f"{root}/train", transform=transform)
    workers = datamodule.num_workers
    return DataLoader(
        dataset,
        batch_size=datamodule.batch_size,
        shuffle=True,
        num_workers=workers,
        persistent_workers=workers > 0,
    )


def epoch(loader) -> tuple[float, int]:
    """Seconds for one pass over the loader, and the images it gave."""
    started, count = time.perf_counter(), 0
    for x, _ in loader:
        count += len(x)
    return time.perf_counter() - started, count


def loaders(root: str, workers: str, rounds: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-images-") as tmp:
        _, datamodule = practicum_data(root, workers, tmp)
        sides = {"practicum": datamodule.train_dataloader(), "torchvision": None}
        sides["torchvision"] = torchvision_loader(root, datamodule)
        for loader in sides.values():  # start the persistent workers; warm the file cache
            epoch(loader)
        rates: dict[str, list[float]] = {name: [] for name in sides}
        for i in range(rounds):
            order = list(sides) if i % 2 == 0 else list(reversed(sides))
            for name in order:
                seconds, count = epoch(sides[name])
                rates[name].append(count / seconds)
    report(
        num_workers=datamodule.num_workers,
        practicum_images_per_s=spread(rates["practicum"]),
        torchvision_images_per_s=spread(rates["torchvision"]),
        ratio=ratio_spread(rates["practicum"], rates["torchvision"]),
    )


def steps(root: str, workers: str, rounds: int) -> None:
    """Training steps of practicum's task over the real loader, then over its batches preloaded."""
    import torch

    from practicum.run.build import build_task

    with tempfile.TemporaryDirectory(prefix="bench-images-") as tmp:
        # a step of the CNN on 64 px images takes 10x the loading of its batch: fewer of them
        cfg, datamodule = practicum_data(root, workers, tmp, (f"data.train_subset={STEP_IMAGES}",))
        task = build_task(cfg)
        optimizer = torch.optim.Adam(task.parameters(), lr=1e-3)
        loader = datamodule.train_dataloader()
        preloaded = [(x.clone(), y.clone()) for x, y in loader]  # also starts the workers

        def train(batches) -> tuple[float, float, int]:
            """Seconds for one epoch, of which waiting for the next batch, and its steps."""
            started, waited, count = time.perf_counter(), 0.0, 0
            batches = iter(batches)
            while True:
                asked = time.perf_counter()
                batch = next(batches, None)
                waited += time.perf_counter() - asked
                if batch is None:
                    break
                loss = task.training_step(batch, count)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                count += 1
            task._epoch_outputs["train"].drain()  # the epoch's bookkeeping, as Lightning would
            return time.perf_counter() - started, waited, count

        task.train()
        train(preloaded)  # warm-up
        ms: dict[str, list[float]] = {"loading": [], "preloaded": []}
        wait_ms: list[float] = []
        for i in range(rounds):
            order = ["loading", "preloaded"] if i % 2 == 0 else ["preloaded", "loading"]
            for name in order:
                seconds, waited, count = train(loader if name == "loading" else preloaded)
                ms[name].append(1000 * seconds / count)
                if name == "loading":
                    wait_ms.append(1000 * waited / count)
    report(
        num_workers=datamodule.num_workers,
        steps_per_epoch=len(preloaded),
        loading_ms_per_step=spread(ms["loading"]),
        preloaded_ms_per_step=spread(ms["preloaded"]),
        wait_ms_per_step=spread(wait_ms),
        wait_share=ratio_spread(wait_ms, ms["preloaded"]),
        ratio=ratio_spread(ms["loading"], ms["preloaded"]),
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=("loaders", "steps"))
    parser.add_argument("root")
    parser.add_argument("workers")
    parser.add_argument("rounds", type=int)
    args = parser.parse_args()
    (loaders if args.mode == "loaders" else steps)(args.root, args.workers, args.rounds)


if __name__ == "__main__":
    main()
