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

Standard errors (tasks/noise.py), measured in `test_step` only: the losses' and beliefs' from each
(real, generated) pair of images; precision, recall and quality as GenerativeTask.quality_errors says.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Annotated, Any

import torch
from torch import Tensor, nn
from torch.nn.functional import binary_cross_entropy_with_logits as bce

from practicum.config.constraints import PositiveInt
from practicum.config.goal import Metric, cost
from practicum.tasks.base import OptimizerFactory
from practicum.tasks.generative import GenerativeTask, save_grid
from practicum.tasks.noise import finite_errors, gathered, mean_error

# the values measured per (real, generated) pair of images
PER_PAIR = ("d_loss", "d_real", "d_fake", "g_loss")


class GANTask(GenerativeTask):
    """Writes grids/samples/epoch_NNN.png (the same fixed noise every epoch) after each epoch."""

    diagnosis_kind = "gan"
    # the discriminator's real/fake logits, which the binary cross-entropy squashes itself
    score_kind = "binary"
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
        # each (real, generated) pair's values while testing, for their standard errors
        self._per_image: dict[str, list[Tensor]] = {name: [] for name in PER_PAIR}

    def forward(self, z: Tensor) -> Tensor:
        return self.net.generate(z)

    def probe_inputs(self, batch: Any) -> Tensor:
        return self.to_signed(batch[0])

    def probe(self, inputs: Tensor) -> tuple[tuple[Tensor, Tensor], Tensor]:
        """Images from fixed noise, one per input, and the discriminator's logits on the inputs."""
        noise = torch.randn(
            len(inputs), self.net.latent_dim, generator=torch.Generator().manual_seed(0)
        )
        generated = self.net.generate(noise.to(inputs))
        logits = self.net.discriminate(inputs)
        return (generated, logits), logits

    def probe_loss(self, batch: Any) -> Tensor:
        """The discriminator's and the generator's losses together: every parameter gets a gradient."""
        values, fake = self.losses(self.to_signed(batch[0]))
        return values["d_loss"] + self.generator_loss(fake)

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

    def losses(self, real: Tensor, per_image: bool = False) -> tuple[dict[str, Tensor], Tensor]:
        """The discriminator's loss and beliefs on a batch of real images (in [-1, 1]) and as many
        generated ones, and the generated images; with `per_image`, each (real, generated) pair's
        own values instead of the batch means."""
        z = torch.randn(len(real), self.net.latent_dim, device=real.device)
        fake = self.net.generate(z)
        real_logits = self.net.discriminate(real)
        fake_logits = self.net.discriminate(fake.detach())
        values = {
            "d_loss": bce(real_logits, torch.ones_like(real_logits), reduction="none")
            + bce(fake_logits, torch.zeros_like(fake_logits), reduction="none"),
            "d_real": torch.sigmoid(real_logits),
            "d_fake": torch.sigmoid(fake_logits),
        }
        if not per_image:
            values = {name: value.mean() for name, value in values.items()}
        return values, fake

    def generator_loss(self, fake: Tensor, per_image: bool = False) -> Tensor:
        logits = self.net.discriminate(fake)
        # non-saturating: maximize log D(G(z))
        return bce(logits, torch.ones_like(logits), reduction="none" if per_image else "mean")

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
    def _eval_step(self, batch: Any, stage: str, per_image: bool = False) -> None:
        real = self.to_signed(batch[0])
        values, fake = self.losses(real, per_image)
        values["g_loss"] = self.generator_loss(fake, per_image)
        if per_image:
            for name, value in values.items():
                self._per_image[name].append(value)
            values = {name: value.mean() for name, value in values.items()}
        self.accumulate(stage, values, len(real))
        self.collect_real(batch[0])

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._eval_step(batch, self.eval_split, per_image=True)

    def _log_epoch(self, stage: str) -> None:
        values = self.epoch_means(stage)
        if f"{stage}/d_loss" in values:
            values[f"{stage}/loss"] = values[f"{stage}/d_loss"]
        real = self.drain_real()
        if real is not None:
            values.update(self.sample_quality(stage, real))
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

    def on_test_epoch_start(self) -> None:
        super().on_test_epoch_start()
        self._per_image = {name: [] for name in PER_PAIR}

    def on_test_epoch_end(self) -> None:
        stage = self.eval_split
        self._log_epoch(stage)
        errors = self.quality_errors(stage)
        for name in PER_PAIR:
            values = gathered(self._per_image[name])
            if values is not None:
                errors[f"{stage}/{name}"] = mean_error(values)
        if f"{stage}/d_loss" in errors:
            errors[f"{stage}/loss"] = errors[f"{stage}/d_loss"]
        self._per_image = {name: [] for name in PER_PAIR}
        self.split_errors = finite_errors(errors)

    def save_pictures(self, datamodule: Any, output_dir: Path, title: str = "") -> None:
        """samples.png of the best checkpoint, in the run directory."""
        self.eval()
        save_grid(self.sample(self.grid_size), Path(output_dir) / "samples.png")
