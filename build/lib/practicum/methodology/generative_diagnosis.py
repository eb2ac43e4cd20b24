"""The diagnosis of generative runs: what a VAE adds to the usual cases, and a GAN's own cases.

A VAE has a likelihood bound (nelbo) on every split, so the usual train/val/test cases hold; its
KL term adds one check (posterior collapse). A GAN's losses are a two-player game that does not
fall monotonically, so the loss-based checks do not apply: the report says so, names the signals
it watched instead (the players' balance, sample precision and recall) and judges the case on
the sample quality of train, val and test.
"""

from __future__ import annotations

import math

from practicum.config.goal import Goal
from practicum.methodology.cases import Diagnosis, Remedy, RunFacts
from practicum.methodology.evidence import values_line

REFERENCE_IMAGES = 256  # images per split that precision/recall compare (model.reference_size)

GAN_HEADLINES = {
    "goal_met": "The samples meet the quality goal against validation (and test) images.",
    "high_train_error": "Low sample quality: the samples do not match even the training images.",
    "high_val_error": "Samples match training images better than held-out ones: the generator memorizes.",
    "distribution_mismatch": "Samples match validation images but not test images: the splits seem to differ.",
    "diverged": "Training diverged: a GAN loss became non-finite.",
}

GAN_REMEDIES = {
    "high_train_error": [
        "Train longer: raise `trainer.max_epochs` (now {max_epochs}); GAN quality keeps rising long after the losses settle.",
        "Rebalance the players: if the discriminator wins (d_real near 1, d_fake near 0) lower "
        "`model.discriminator_optimizer.lr`; if it is fooled from the start, lower `model.generator_optimizer.lr`.",
        "Add capacity: `model.net.channels=[128,256]`, `model.net.latent_dim=64`.",
        "Low recall with high precision is mode dropping: more latent dimensions, a smaller generator lr.",
    ],
    "high_val_error": [
        "Get more training images, or augment them.",
        "Stop earlier: the best epoch is kept; lower `callbacks.early_stopping.patience`.",
        "Make the discriminator smaller (`model.net.channels`) so it cannot memorize the training set.",
    ],
    "distribution_mismatch": [
        "Check that validation and test images come from the same source; reshuffle with `data.split_seed`.",
        "Quality on 256 images is noisy: confirm over seeds, `python train.py -m seed=0,1,2`.",
    ],
    "diverged": [
        "Lower both learning rates: `model.generator_optimizer.lr=1e-4 model.discriminator_optimizer.lr=1e-4`.",
        "Keep batch norm in the generator and discriminator (the DCGAN recipe).",
    ],
    "goal_met": [
        "Confirm it holds over seeds: `python train.py -m seed=0,1,2`.",
        "Raise the bar: `goal.target=...` (real validation images against real training images score about 0.9 on digits).",
        "Look at samples.png and grids/samples/: a number is only a proxy for what the images show.",
    ],
}

WATCHED = (
    "Signals watched: d_loss and g_loss (train and val), d_real and d_fake (the discriminator's "
    "confidence on real and generated images), and k-NN precision, recall and quality of 256 "
    "samples against 256 images of each split."
)
NOT_APPLICABLE = (
    "Not applicable to a GAN: the loss-based checks (a rising training loss as divergence, a rising "
    "validation loss as overfitting, a falling loss as a reason to train longer) — the two losses "
    "trade off by design; divergence is judged only by non-finite losses. No linear baseline: nothing is classified."
)


def vae_collapse(metrics: dict[str, float]) -> str | None:
    """Why a VAE has collapsed, if its own evidence says so: a code that carries no information,
    or samples that cover almost none of the validation images."""
    kl, recall = metrics.get("val/kl"), metrics.get("val/recall")
    if kl is not None and kl < 1.0:
        return f"The posterior collapsed: the KL term is {kl:.2f} nats, the code carries almost nothing."
    if recall is not None and recall < 0.1:
        return f"The samples cover almost none of the validation images (recall {recall:.2f})."
    return None


def vae_evidence(metrics: dict[str, float]) -> list[str]:
    kl, recon = metrics.get("val/kl"), metrics.get("val/recon")
    if kl is None or recon is None:
        return []
    lines = [f"Validation ELBO split: reconstruction {recon:.2f} + KL {kl:.2f} nats per image."]
    if kl < 1.0:
        lines.append(
            "The KL term is below 1 nat: the code carries almost no information (posterior "
            "collapse); lower `model.beta` or the decoder's capacity."
        )
    precision, recall = metrics.get("val/precision"), metrics.get("val/recall")
    if precision is not None and recall is not None and recall < 0.5 * precision:
        lines.append(
            f"Sample precision {precision:.2f} but recall {recall:.2f}: samples are typical but "
            "blurry or alike; a larger `model.net.latent_dim` or a lower `model.beta` adds variety."
        )
    lines.append("No linear baseline: nothing is classified.")
    return lines


def decide_gan_verdict(metrics: dict[str, float], goal: Goal) -> str:
    losses = [v for k, v in metrics.items() if k.endswith(("/d_loss", "/g_loss"))]
    if any(not math.isfinite(v) for v in losses):
        return "diverged"
    recall = metrics.get("val/recall")
    if recall is not None and recall < 0.05:
        return "high_train_error"  # mode collapse: never a met goal, whatever the quality says
    met = {split: goal.met(metrics.get(goal.at(split))) for split in ("train", "val", "test")}
    if met["val"]:
        val, test = metrics.get(goal.at("val")), metrics.get(goal.at("test"))
        # quality is a share of 256 images: val and test differ by up to ~2 standard errors by chance
        noise = 2 * math.sqrt(2 * 0.25 / REFERENCE_IMAGES)
        beyond_noise = test is not None and val - test > noise
        return "distribution_mismatch" if not met["test"] and beyond_noise else "goal_met"
    return "high_val_error" if met["train"] else "high_train_error"


def diagnose_gan(facts: RunFacts) -> Diagnosis:
    metrics, goal, history, best = facts.metrics, facts.goal, facts.history, facts.best
    verdict = decide_gan_verdict(metrics, goal)
    evidence = [values_line(metrics, goal), WATCHED]
    d_real, d_fake = metrics.get("train/d_real"), metrics.get("train/d_fake")
    if d_real is not None and d_fake is not None:
        if d_real > 0.9 and d_fake < 0.1:
            balance = "the discriminator wins outright, so the generator's gradients vanish"
        elif abs(d_real - d_fake) < 0.3:
            balance = "the players are balanced"
        else:
            balance = "the discriminator leads"
        evidence.append(
            f"Discriminator on training images: P(real) {d_real:.2f} on real, {d_fake:.2f} on generated: {balance}."
        )
    precision, recall = metrics.get("val/precision"), metrics.get("val/recall")
    if precision is not None and recall is not None:
        kind = (
            "the samples are far from every real image"
            if max(precision, recall) < 0.1
            else "the samples cover little of the variety (mode dropping)"
            if recall < 0.5 * precision
            else "the samples are off the real images' manifold"
            if precision < 0.5 * recall
            else "fidelity and variety are on a par"
        )
        evidence.append(f"Validation precision {precision:.2f}, recall {recall:.2f}: {kind}.")
    quality = [v[goal.metric] for v in history.values() if goal.metric in v]
    if len(quality) >= 3 and best is not None and best == len(history) - 1:
        evidence.append(
            f"The best {goal.metric} came at the last epoch ({best}): more epochs would help."
        )
    evidence.append(NOT_APPLICABLE)
    recall = metrics.get("val/recall")
    collapsed = recall is not None and recall < 0.05
    if collapsed:
        evidence.append(f"Mode collapse: the samples cover {recall:.2f} of the validation images.")
    values = {"max_epochs": facts.max_epochs or "?"}
    steps = [text.format(**values) for text in GAN_REMEDIES[verdict]]
    remedies = [Remedy(f"gan_{i}", text) for i, text in enumerate(steps)]
    return Diagnosis(
        verdict,
        GAN_HEADLINES[verdict],
        evidence,
        steps,
        case="collapse" if collapsed else ("goal_met" if verdict == "goal_met" else None),
        remedies=remedies,
    )
