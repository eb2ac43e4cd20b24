"""Architectures as plain `torch.nn.Module`s: no Lightning, no losses. Shapes come from the data config."""
