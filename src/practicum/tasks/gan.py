"""Generative adversarial network (Goodfellow et al. 2014) with the DCGAN recipe, trained by
Lightning's manual optimization: one discriminator step, then one generator step, per batch.

Logged once per epoch and stage: `d_loss` (the discriminator's binary cross-entropy on real and
generated images; 2 ln 2 = 1.386 when it cannot tell them apart), `g_loss` (the generator's
non-saturating loss), `d_real`/`d_fake` (the discriminator's mean probability of "real" on real and
generated images), and `loss` (= d_loss, what curves.png plots).

A GAN has no likelihood to hold out, so its quality signal compares samples with real images:
`precision` and `recall` are the k-NN precision/recall of 256 samples (from fixed noise) against
the first 256 images of the split, in pixel space, and `quality` is their harmonic mean (the goal
metric). Precision alone rewards a generator that repeats a few good images; recall catches that.
It needs no extra model and no labels, so it works for any image data.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Annotated, Any

import torch
from torch import Tensor, nn
from torch.nn.functional import binary_cross_entropy_with_logits as bce

from practicum.constraints import PositiveInt
from practicum.methodology.goal import Metric, cost
from practicum.tasks.base import OptimizerFactory
from practicum.tasks.generative import (
    GenerativeTask,
    harmonic_mean,
    knn_precision_recall,
    save_grid,
)


class GANTask(GenerativeTask):
    """Writes grids/samples/epoch_NNN.png (the same fixed noise every epoch) after each epoch."""

    diagnosis_kind = "gan"
    logged_metrics = (
        *(cost(name) for name in ("loss", "d_loss", "g_loss")),
        # the discriminator's mean belief that real (d_real) and generated (d_fake) images are real
        Metric("d_real", None, 0.0, 1.0),
        Metric("d_fake", None, 0.0, 1.0),
        *GenerativeTask.SAMPLE_QUALITY,
    )

    def __init__(
        self,
        net: nn.Module,
        in_shape: list[int],
        optimizer: OptimizerFactory | None = None,
        scheduler: dict[str, Any] | None = None,
        generator_optimizer: OptimizerFactory | None = None,
        discriminator_optimizer: OptimizerFactory | None = None,
        samples_dir: str | None = None,
        grid_size: Annotated[int, PositiveInt] = 64,
        reference_size: Annotated[int, PositiveInt] = 256,
    ) -> None:
        super().__init__(
            net, in_shape, optimizer, scheduler, samples_dir, grid_size, reference_size
        )
        self.save_hyperparameters(
            ignore=[
                "net",
                "optimizer",
                "scheduler",
                "generator_optimizer",
                "discriminator_optimizer",
            ]
        )
        self.automatic_optimization = False
        # null in the model config: both use the optimizer group's choice
        self.generator_factory = generator_optimizer or optimizer
        self.discriminator_factory = discriminator_optimizer or optimizer
        generator = torch.Generator().manual_seed(0)
        noise = torch.randn(max(grid_size, reference_size), net.latent_dim, generator=generator)
        self.register_buffer("fixed_noise", noise, persistent=False)

    def forward(self, z: Tensor) -> Tensor:
        return self.net.generate(z)

    def to_signed(self, x: Tensor) -> Tensor:
        """Normalized images -> [-1, 1], the generator's tanh range."""
        return 2 * self.to_unit(x) - 1

    @torch.no_grad()
    def sample(self, count: int) -> Tensor:
        """Images in [0, 1] from the fixed noise."""
        return (self.net.generate(self.fixed_noise[:count]) + 1) / 2

    def configure_optimizers(self) -> Any:
        if self.generator_factory is None or self.discriminator_factory is None:
            raise RuntimeError(
                "this task was built without optimizers; pass optimizer= to train it"
            )
        optimizers = [
            self.generator_factory(self.net.generator.parameters()),
            self.discriminator_factory(self.net.discriminator.parameters()),
        ]
        factory = self.scheduler_spec.get("factory")
        if factory is None:
            return optimizers
        kwargs = {}
        if "total_steps" in inspect.signature(factory).parameters:
            kwargs["total_steps"] = int(self.trainer.estimated_stepping_batches)
        return optimizers, [factory(opt, **kwargs) for opt in optimizers]

    def losses(self, real: Tensor) -> tuple[dict[str, Tensor], Tensor]:
        """The discriminator's and the generator's losses on a batch of real images (in [-1, 1])."""
        z = torch.randn(len(real), self.net.latent_dim, device=real.device)
        fake = self.net.generate(z)
        real_logits = self.net.discriminate(real)
        fake_logits = self.net.discriminate(fake.detach())
        d_loss = bce(real_logits, torch.ones_like(real_logits)) + bce(
            fake_logits, torch.zeros_like(fake_logits)
        )
        values = {
            "d_loss": d_loss,
            "d_real": torch.sigmoid(real_logits).mean(),
            "d_fake": torch.sigmoid(fake_logits).mean(),
        }
        return values, fake

    def generator_loss(self, fake: Tensor) -> Tensor:
        logits = self.net.discriminate(fake)
        return bce(logits, torch.ones_like(logits))  # non-saturating: maximize log D(G(z))

    def training_step(self, batch: Any, batch_idx: int) -> None:
        g_opt, d_opt = self.optimizers()
        real = self.to_signed(batch[0])
        values, fake = self.losses(real)
        d_opt.zero_grad(set_to_none=True)
        self.manual_backward(values["d_loss"])
        d_opt.step()
        g_loss = self.generator_loss(fake)
        g_opt.zero_grad(set_to_none=True)
        self.manual_backward(g_loss)
        g_opt.step()
        values["g_loss"] = g_loss
        self.accumulate("train", values, len(real))

    @torch.no_grad()
    def _eval_step(self, batch: Any, stage: str) -> None:
        real = self.to_signed(batch[0])
        values, fake = self.losses(real)
        values["g_loss"] = self.generator_loss(fake)
        self.accumulate(stage, values, len(real))
        self.collect_real(batch[0])

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._eval_step(batch, self.eval_split)

    def _log_epoch(self, stage: str) -> None:
        values = self.epoch_means(stage)
        if f"{stage}/d_loss" in values:
            values[f"{stage}/loss"] = values[f"{stage}/d_loss"]
        real = self.drain_real()
        if real is not None:
            precision, recall = knn_precision_recall(real, self.sample(len(real)))
            values[f"{stage}/precision"] = torch.tensor(precision)
            values[f"{stage}/recall"] = torch.tensor(recall)
            values[f"{stage}/quality"] = torch.tensor(harmonic_mean(precision, recall))
        self.log_dict(values, prog_bar=stage == "val", sync_dist=True)

    def on_train_epoch_end(self) -> None:
        self._log_epoch("train")
        self.stop_if_diverged(self.trainer.callback_metrics.get("train/d_loss", torch.zeros(())))
        schedulers = self.lr_schedulers()
        for scheduler in schedulers if isinstance(schedulers, list) else [schedulers]:
            if scheduler is None:
                continue
            if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                monitor = self.scheduler_spec.get("monitor")
                metric = self.trainer.callback_metrics.get(monitor) if monitor else None
                if metric is not None:
                    scheduler.step(metric)
            else:
                scheduler.step()
        if self.fitting():
            was_training = self.training
            self.eval()
            save_grid(self.sample(self.grid_size), self.grid_path("samples"))
            self.train(was_training)

    def on_validation_epoch_end(self) -> None:
        self._log_epoch("val")

    def on_test_epoch_end(self) -> None:
        self._log_epoch(self.eval_split)

    def save_pictures(self, datamodule: Any, output_dir: Path, title: str = "") -> None:
        """samples.png of the best checkpoint, in the run directory."""
        self.eval()
        save_grid(self.sample(self.grid_size), Path(output_dir) / "samples.png")
