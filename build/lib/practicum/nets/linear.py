"""A linear classifier: logistic regression (cross-entropy) or a linear SVM (hinge loss)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from practicum.nets.sizes import flat_size, require_classes


class Linear(nn.Module):
    def __init__(self, in_shape: Sequence[int], num_classes: int) -> None:
        super().__init__()
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(flat_size(in_shape), require_classes(num_classes))
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(x)
