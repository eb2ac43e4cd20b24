"""Gated recurrent classifiers (LSTM, GRU) for sequences of feature vectors."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence

from practicum.config.constraints import Fraction, PositiveInt
from practicum.config.knobs import Add, Double, Dropout
from practicum.errors import UserError
from practicum.nets.sizes import require_classes

CELLS = {"lstm": nn.LSTM, "gru": nn.GRU}


class RecurrentClassifier(nn.Module):
    """A stack of LSTM/GRU layers read to the end of each sequence, then a linear head.

    Inputs are `(batch, steps, features)` tensors, or `(padded, lengths)` pairs for sequences of
    different lengths: those are packed, so the padding never enters the recurrence.
    """

    # it needs sequence data, so a classification task around it solves sequence classification
    problem = "sequence_classification"

    # what the diagnosis and the autopilot may turn (practicum/config/knobs.py)
    knobs = {"hidden_size": Double(most=2048), "num_layers": Add(most=4), "dropout": Dropout()}

    def __init__(
        self,
        in_shape: Sequence[int],
        num_classes: int,
        cell: str = "lstm",
        hidden_size: Annotated[int, PositiveInt] = 128,
        num_layers: Annotated[int, PositiveInt] = 1,
        bidirectional: bool = False,
        dropout: Annotated[float, Fraction] = 0.3,
    ) -> None:
        super().__init__()
        if cell not in CELLS:
            raise UserError(f"model.net.cell={cell!r} is invalid: use one of {', '.join(CELLS)}")
        if len(in_shape) != 2:
            raise UserError(
                f"model.net needs sequences (steps, features) but the data gives shape "
                f"{list(in_shape)}: use data=digits_rows, adding or csv_sequences"
            )
        self.rnn = CELLS[cell](
            input_size=int(in_shape[-1]),
            hidden_size=hidden_size,
            num_layers=num_layers,
            batch_first=True,
            bidirectional=bidirectional,
            # PyTorch applies dropout between stacked layers only
            dropout=dropout if num_layers > 1 else 0.0,
        )
        directions = 2 if bidirectional else 1
        self.head = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(directions * hidden_size, require_classes(num_classes))
        )

    def forward(self, x: Tensor | tuple[Tensor, Tensor]) -> Tensor:
        if isinstance(x, tuple | list):
            padded, lengths = x
            # lengths live on the CPU for packing; enforce_sorted=False keeps the batch order
            x = pack_padded_sequence(padded, lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, state = self.rnn(x)
        hidden = state[0] if isinstance(state, tuple) else state  # LSTM: (h, c); GRU: h
        # the last layer's final state, both directions side by side
        last = hidden[-2:] if self.rnn.bidirectional else hidden[-1:]
        return self.head(torch.cat(list(last), dim=-1))
