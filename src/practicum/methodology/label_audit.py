"""Which labels look wrong: confident learning on out-of-sample predicted probabilities.

Northcutt, Jiang & Chuang, "Confident Learning: Estimating Uncertainty in Dataset Labels", JAIR 70
(2021), the method behind cleanlab (AGPL-3.0, so not a dependency of this MIT template; where it is
installed a test holds these flags against its `find_label_issues` on the same probabilities):

1. per-class thresholds: t_j, the mean probability of class j over the examples labelled j;
2. the confident joint C[given][true]: an example counts for the class j, among those whose
   probability reaches t_j, that it is most likely to be (none reaches: it is not counted);
3. calibrated to the label counts and normalized, C estimates the joint distribution Q of given and
   true labels; its off-diagonal mass is the estimated fraction of wrong labels;
4. prune by noise rate: for each pair (given i, true j), the n·Q[i][j] examples labelled i with the
   largest margin p_j - p_i are flagged;
5. an example the model still assigns to its given class is not flagged (as in cleanlab);
6. the flags are ranked by self-confidence, the probability of the given label (lowest first).

The estimated noise rate is the flagged share: Q's off-diagonal mass less step 5's examples, which
came within about a point of the true rate on digits and tables with 10% and 25% of the labels
flipped, where 1 - trace(Q) overshot by up to 3 points (benchmarks/audit.py).

The probabilities must be out-of-sample (the model never trained on the example): a model scored on
its own training labels has memorized them, noise included.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class LabelIssues:
    """The flagged examples of one split, most suspicious first, and the estimated noise rate."""

    indices: np.ndarray  # positions in the split, ranked by self-confidence (lowest first)
    suggested: np.ndarray  # the most likely other class of each flagged example
    score: np.ndarray  # its self-confidence: the probability of the given label
    noise_rate: float  # estimated fraction of wrong labels among the split's examples (flagged)
    count: int  # examples audited


def thresholds(labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """t_j: the mean probability of class j among the examples labelled j (classes without
    examples get 1.0 plus a little, so that nothing is counted for them)."""
    k = probs.shape[1]
    sums = np.zeros(k)
    np.add.at(sums, labels, probs[np.arange(len(labels)), labels])
    counts = np.bincount(labels, minlength=k)
    return np.where(counts > 0, sums / np.maximum(counts, 1), 1.0 + 1e-6)


def confident_joint(labels: np.ndarray, probs: np.ndarray) -> tuple[np.ndarray, ...]:
    """The non-zero cells of C[given][true] as (given, true, count) arrays: the matrix itself
    would be K x K, which 10,000 classes cannot afford; O(n·K) time and memory."""
    above = probs >= thresholds(labels, probs) - 1e-6  # cleanlab's tolerance for float ties
    counted = above.any(axis=1)
    likeliest = np.where(above, probs, -1.0).argmax(axis=1)
    cells, counts = np.unique(
        np.stack([labels[counted], likeliest[counted]]), axis=1, return_counts=True
    )
    return cells[0], cells[1], counts


def estimated_joint(labels: np.ndarray, probs: np.ndarray) -> tuple[np.ndarray, ...]:
    """The non-zero cells of Q[given][true]: the confident joint calibrated to the label counts
    (each given class's row sums to its share of the examples), as (given, true, share) arrays."""
    given, true, counts = confident_joint(labels, probs)
    k = probs.shape[1]
    rows = np.bincount(given, weights=counts, minlength=k)
    members = np.bincount(labels, minlength=k)
    shares = counts / rows[given] * members[given] / max(len(labels), 1)
    return given, true, shares


def find_label_issues(labels: np.ndarray, probs: np.ndarray) -> LabelIssues:
    """Confident learning's label issues of one split (prune by noise rate, rank by self-confidence)."""
    labels = np.asarray(labels, dtype=np.int64)
    probs = np.asarray(probs, dtype=np.float64)
    n = len(labels)
    flagged = np.zeros(n, dtype=bool)
    given, true, shares = estimated_joint(labels, probs)
    off = given != true
    members_of = _members(labels)
    for i, j, share in zip(given[off], true[off], shares[off], strict=True):
        members = members_of[i]
        # keep at least one example of every class, as cleanlab does
        take = min(int(round(n * share)), len(members) - 1)
        if take <= 0:
            continue
        margin = probs[members, j] - probs[members, i]
        flagged[members[np.argsort(-margin, kind="stable")[:take]]] = True
    # the flags among a pair's examples must also be more likely another class than their own
    flagged &= probs.argmax(axis=1) != labels
    indices = np.flatnonzero(flagged)
    score = probs[indices, labels[indices]]
    order = np.argsort(score, kind="stable")
    indices, score = indices[order], score[order]
    others = probs[indices].copy()
    others[np.arange(len(indices)), labels[indices]] = -1.0
    return LabelIssues(
        indices=indices,
        suggested=others.argmax(axis=1) if len(indices) else np.zeros(0, dtype=np.int64),
        score=score,
        noise_rate=len(indices) / n if n else 0.0,
        count=n,
    )


def _members(labels: np.ndarray) -> dict[int, np.ndarray]:
    """The positions of each class's examples, in one sort (not one scan per class)."""
    order = np.argsort(labels, kind="stable")
    classes, starts = np.unique(labels[order], return_index=True)
    return dict(zip(classes.tolist(), np.split(order, starts[1:]), strict=True))


def accuracy_ceiling(noise_rate: float) -> float:
    """The accuracy a perfect model scores against labels with this fraction wrong."""
    return 1.0 - noise_rate
