"""Variational autoencoder (Kingma & Welling 2014): the ELBO split into reconstruction and KL.

Pixels, mapped to [0, 1], get a Bernoulli likelihood (binary cross-entropy on the decoder's logits).
Logged per image, in nats, once per epoch and stage:
- `recon`: the expected negative log-likelihood of the image under its reconstruction;
- `kl`: KL(q(z|x) || N(0, I)), the information the code carries about the image;
- `nelbo`: recon + kl, the negative ELBO, an upper bound on -log p(x) (the goal metric: lower is better);
- `loss`: recon + beta * kl, the training objective (beta = 1 is the plain VAE; beta > 1 a beta-VAE).

Standard errors (tasks/noise.py), measured in `test_step` only: each term's from the images' own
terms; precision, recall and quality as GenerativeTask.quality_errors says.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import torch
from torch import Tensor, nn
from torch.nn.functional import binary_cross_entropy_with_logits

from practicum.config.constraints import NonNegative, PositiveInt
from practicum.config.goal import cost
from practicum.tasks.base import OptimizerFactory
from practicum.tasks.generative import GenerativeTask, save_grid
from practicum.tasks.noise import finite_errors, gathered, mean_error

# what elbo_terms returns
TERMS = ("loss", "nelbo", "recon", "kl")


class VAETask(GenerativeTask):
    """Writes grids/samples/epoch_NNN.png (decoded fixed codes) and grids/reconstructions/
    epoch_NNN.png (validation images above their reconstructions) after each training epoch."""

    diagnosis_kind = "vae"
    # the decoder's per-pixel logits, which the binary cross-entropy squashes itself
    score_kind = "binary"
    logged_metrics = (
        *(cost(name) for name in TERMS),
        *GenerativeTask.SAMPLE_QUALITY,
    )

    def __init__(
        self,
        net: nn.Module,
        in_shape: list[int],
        optimizer: OptimizerFactory | None = None,
        scheduler: dict[str, Any] | None = None,
        beta: Annotated[float, NonNegative] = 1.0,
        samples_dir: str | None = None,
        grid_size: Annotated[int, PositiveInt] = 64,
        reference_size: Annotated[int, PositiveInt] = 256,
    ) -> None:
        super().__init__(
            net, in_shape, optimizer, scheduler, samples_dir, grid_size, reference_size
        )
        self.save_hyperparameters(ignore=["net", "optimizer", "scheduler"])
        self.beta = beta
        # fixed codes: the sample grids of successive epochs show the same points of the latent space
        generator = torch.Generator().manual_seed(0)
        codes = torch.randn(max(grid_size, reference_size), net.latent_dim, generator=generator)
        self.register_buffer("fixed_codes", codes, persistent=False)
        self._shown: Tensor | None = None
        # each image's ELBO terms while testing, for their standard errors
        self._per_image: dict[str, list[Tensor]] = {name: [] for name in TERMS}

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return self.net(x)

    def probe_inputs(self, batch: Any) -> Tensor:
        return self.to_unit(batch[0])

    def probe(self, inputs: Tensor) -> tuple[tuple[Tensor, Tensor, Tensor], Tensor]:
        outputs = self.net(inputs)
        return outputs, outputs[0]

    def probe_loss(self, batch: Any) -> Tensor:
        return self.elbo_terms(batch[0])["loss"]

    def elbo_terms(self, x: Tensor, per_image: bool = False) -> dict[str, Tensor]:
        """Per-image means of the reconstruction term, the KL term, the negative ELBO and the loss;
        with `per_image`, each image's own terms instead (vectors of the batch's length)."""
        target = self.to_unit(x)
        logits, mean, log_var = self(target)
        kl_terms = -0.5 * (1 + log_var - mean.pow(2) - log_var.exp())
        if per_image:
            pixels = binary_cross_entropy_with_logits(logits, target, reduction="none")
            recon, kl = pixels.flatten(1).sum(1), kl_terms.flatten(1).sum(1)
        else:
            batch = len(x)
            recon = binary_cross_entropy_with_logits(logits, target, reduction="sum") / batch
            kl = kl_terms.sum() / batch
        return {"loss": recon + self.beta * kl, "nelbo": recon + kl, "recon": recon, "kl": kl}

    def _shared_step(self, batch: Any, stage: str, per_image: bool = False) -> Tensor:
        x = batch[0]
        terms = self.elbo_terms(x, per_image)
        if per_image:
            for name, values in terms.items():
                self._per_image[name].append(values.detach())
            terms = {name: values.mean() for name, values in terms.items()}
        self.accumulate(stage, terms, len(x))
        if stage != "train":
            self.collect_real(x)
        if stage == "val" and self._shown is None:
            self._shown = x[:16].detach()
        return terms["loss"]

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        return self._shared_step(batch, "train")

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._shared_step(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._shared_step(batch, self.eval_split, per_image=True)

    @torch.no_grad()
    def sample(self, count: int) -> Tensor:
        """Decoded fixed codes, as images in [0, 1]."""
        return torch.sigmoid(self.net.decode(self.fixed_codes[:count]))

    @torch.no_grad()
    def reconstruct(self, x: Tensor) -> Tensor:
        """Images above their reconstructions (the posterior mean decoded), in [0, 1]."""
        target = self.to_unit(x)
        mean, _ = self.net.encode(target)
        return torch.cat([target, torch.sigmoid(self.net.decode(mean))])

    def _log_epoch(self, stage: str) -> None:
        values = self.epoch_means(stage)
        real = self.drain_real()
        if real is not None:
            # the same k-NN precision/recall the GAN reports, so the two can be compared
            values.update(self.sample_quality(stage, real))
        self.log_dict(values, prog_bar=stage == "val", sync_dist=True)
        if stage == "train":
            self.stop_if_diverged(values["train/loss"])

    def on_train_epoch_end(self) -> None:
        self._log_epoch("train")
        if self.fitting():
            save_grid(self.sample(self.grid_size), self.grid_path("samples"))
            if self._shown is not None:
                save_grid(self.reconstruct(self._shown), self.grid_path("reconstructions"))

    def on_validation_epoch_end(self) -> None:
        self._log_epoch("val")

    def on_validation_epoch_start(self) -> None:
        self._shown = None

    def on_test_epoch_start(self) -> None:
        super().on_test_epoch_start()
        self._per_image = {name: [] for name in TERMS}

    def on_test_epoch_end(self) -> None:
        stage = self.eval_split
        self._log_epoch(stage)
        errors = self.quality_errors(stage)
        self.split_outcomes = {"kind": "means"}
        for name in TERMS:
            values = gathered(self._per_image[name])
            if values is not None:
                errors[f"{stage}/{name}"] = mean_error(values)
                self.split_outcomes[name] = values.float()
        self._per_image = {name: [] for name in TERMS}
        self.split_errors = finite_errors(errors)

    def save_pictures(self, datamodule: Any, output_dir: Path, title: str = "") -> None:
        """samples.png and reconstructions.png of the best checkpoint, in the run directory."""
        self.eval()
        save_grid(self.sample(self.grid_size), Path(output_dir) / "samples.png")
        x = next(iter(datamodule.loader("val")))[0][:16].to(self.device)
        save_grid(self.reconstruct(x), Path(output_dir) / "reconstructions.png")
