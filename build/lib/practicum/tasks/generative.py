"""What the generative tasks (VAE, GAN) share: the data's pixel range, epoch means, image grids,
and the k-nearest-neighbour precision/recall of samples against real images.

Generative models train on image data of any labelled problem; the labels are ignored.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any

import torch
from torch import Tensor, nn

from practicum.config.constraints import PositiveInt
from practicum.config.goal import share
from practicum.nets.sizes import require_image_shape
from practicum.tasks.base import OptimizerFactory, Task
from practicum.tasks.noise import share_error

STAGES = ("train", "val", "test")


class GenerativeTask(Task):
    """Maps the data module's normalized images to [0, 1] with the training split's per-channel
    minimum and maximum (kept as buffers, so checkpoints carry them), whatever the normalization."""

    problem = "generation"
    # k-NN precision and recall of samples against held-out images: measured on val only
    SAMPLE_QUALITY = tuple(
        share(name, splits=("val",)) for name in ("precision", "recall", "quality")
    )

    def __init__(
        self,
        net: nn.Module,
        in_shape: list[int],
        optimizer: OptimizerFactory | None = None,
        scheduler: dict[str, Any] | None = None,
        samples_dir: str | None = None,
        grid_size: Annotated[int, PositiveInt] = 64,
        reference_size: Annotated[int, PositiveInt] = 256,
    ) -> None:
        super().__init__(net, optimizer, scheduler)
        channels, _, _ = require_image_shape(in_shape, "vae/gan")
        self.register_buffer("data_low", torch.zeros(channels, 1, 1))
        self.register_buffer("data_high", torch.ones(channels, 1, 1))
        self.samples_dir = samples_dir
        self.grid_size = grid_size
        self.reference_size = reference_size
        self._sums: dict[str, dict[str, Tensor]] = {stage: {} for stage in STAGES}
        self._counts: dict[str, int] = dict.fromkeys(STAGES, 0)
        self._real: list[Tensor] = []
        # (stage, precision, recall, images) of the last sample quality measured
        self._quality: tuple[str, float, float, int] | None = None

    # -- pixel range ----------------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        datamodule = getattr(self.trainer, "datamodule", None)
        if stage == "fit" and datamodule is not None:
            self.fit_data_range(datamodule.loader("train"))

    @torch.no_grad()
    def fit_data_range(self, batches: Any, max_batches: int = 50) -> None:
        low = high = None
        for i, batch in enumerate(batches):
            if i == max_batches:
                break
            x = batch[0].transpose(0, 1).flatten(1)  # (channels, pixels)
            low = x.min(1).values if low is None else torch.minimum(low, x.min(1).values)
            high = x.max(1).values if high is None else torch.maximum(high, x.max(1).values)
        if low is not None:
            self.data_low.copy_(low.view_as(self.data_low))
            self.data_high.copy_(torch.maximum(high, low + 1e-6).view_as(self.data_high))

    def to_unit(self, x: Tensor) -> Tensor:
        """Normalized images -> [0, 1]."""
        return ((x - self.data_low) / (self.data_high - self.data_low)).clamp(0.0, 1.0)

    # -- epoch means ----------------------------------------------------------------------------
    def accumulate(self, stage: str, values: dict[str, Tensor], count: int) -> None:
        sums = self._sums[stage]
        for name, value in values.items():
            sums[name] = sums.get(name, 0.0) + value.detach() * count
        self._counts[stage] += count

    def epoch_means(self, stage: str) -> dict[str, Tensor]:
        count = max(self._counts[stage], 1)
        means = {f"{stage}/{name}": total / count for name, total in self._sums[stage].items()}
        self._sums[stage], self._counts[stage] = {}, 0
        return means

    def collect_real(self, x: Tensor) -> None:
        """Keep the first `reference_size` images of the split for precision/recall."""
        held = sum(len(t) for t in self._real)
        if held < self.reference_size:
            self._real.append(self.to_unit(x[: self.reference_size - held]).detach())

    def drain_real(self) -> Tensor | None:
        real, self._real = self._real, []
        return torch.cat(real) if real else None

    # -- sample quality -------------------------------------------------------------------------
    def on_test_epoch_start(self) -> None:
        self._quality = None

    def sample_quality(self, stage: str, real: Tensor) -> dict[str, Tensor]:
        """k-NN precision, recall and their harmonic mean (quality) of as many samples as `real`
        holds images, against them; remembered for their standard errors."""
        precision, recall = knn_precision_recall(real, self.sample(len(real)))
        self._quality = (stage, precision, recall, len(real))
        return {
            f"{stage}/precision": torch.tensor(precision),
            f"{stage}/recall": torch.tensor(recall),
            f"{stage}/quality": torch.tensor(harmonic_mean(precision, recall)),
        }

    def quality_errors(self, stage: str) -> dict[str, float]:
        """Standard errors of the last sample quality measured on `stage`: precision is a share of
        the samples, recall a share of the real images, each binomial (the manifolds' radii are
        taken as fixed); quality's follows by the delta method, the two shares independent."""
        if self._quality is None or self._quality[0] != stage:
            return {}
        _, precision, recall, count = self._quality
        self._quality = None
        error_p, error_r = share_error(precision, count), share_error(recall, count)
        total = precision + recall
        # d quality / d precision = 2 recall^2 / total^2, and symmetrically
        error_q = (
            2 * math.hypot(recall**2 * error_p, precision**2 * error_r) / total**2
            if total > 0
            else float("nan")
        )
        return {
            f"{stage}/precision": error_p,
            f"{stage}/recall": error_r,
            f"{stage}/quality": error_q,
        }

    # -- pictures -------------------------------------------------------------------------------
    def fitting(self) -> bool:
        trainer = self.attached_trainer()
        return trainer is not None and trainer.state.fn == "fit" and not trainer.sanity_checking

    def grid_path(self, folder: str) -> Path:
        root = self.samples_dir or str(Path(self.trainer.default_root_dir) / "grids")
        return Path(root) / folder / f"epoch_{self.current_epoch:03d}.png"


def save_grid(images: Tensor, path: Path, nrow: int = 8) -> Path:
    """Images in [0, 1] as one PNG grid; tiny images are enlarged (nearest) to at least 32 px."""
    from torchvision.utils import save_image

    images = images.detach().float().cpu().clamp(0.0, 1.0)
    scale = max(1, 32 // min(images.shape[-2:]))
    if scale > 1:
        images = nn.functional.interpolate(images, scale_factor=scale, mode="nearest")
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(images, path, nrow=nrow, padding=2, pad_value=0.5)
    return path


@torch.no_grad()
def knn_precision_recall(real: Tensor, fake: Tensor, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019) in pixel space.

    Each set's manifold is the union of balls reaching each point's k-th nearest neighbour in
    that set. Precision: the share of samples inside the real manifold (do they look real?);
    recall: the share of real images inside the samples' manifold (is the variety covered?).
    """
    real, fake = real.flatten(1).float(), fake.flatten(1).float()
    k = min(k, len(real) - 1, len(fake) - 1)
    if k < 1:
        return float("nan"), float("nan")

    def radii(points: Tensor) -> Tensor:
        # the k-th smallest distance, skipping the point itself at distance 0
        return torch.cdist(points, points).kthvalue(k + 1, dim=1).values

    to_real = torch.cdist(fake, real)  # (fake, real)
    precision = (to_real <= radii(real)[None, :]).any(dim=1).float().mean()
    to_fake = to_real.T.contiguous()  # (real, fake)
    recall = (to_fake <= radii(fake)[None, :]).any(dim=1).float().mean()
    return float(precision), float(recall)


def harmonic_mean(a: float, b: float) -> float:
    return 0.0 if a + b == 0 else 2 * a * b / (a + b)
