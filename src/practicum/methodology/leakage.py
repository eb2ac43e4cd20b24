"""Examples shared between splits (leakage): a val or test example that is also in train, exactly or
nearly, scores what the model memorized, not what it learned.

Each function returns, for every query example, the position of its match in train (-1: none).

- Tables and arrays: two rows match when every feature differs by at most
  RTOL·max(|a|, |b|) + ATOL·std (the feature's training standard deviation): a copy with 1e-4
  relative noise matches, two different rows do not (they differ by more than a thousandth of a
  standard deviation somewhere). Candidates are the nearest training rows in standardized units.
- Sequences: exact equality of the whole example.
- Images (their pixels before normalization): a perceptual hash (Zauner 2010: the signs of the 8x8
  lowest frequencies of the 32x32 luma image's DCT against their median; 64 bits) finds candidates
  within HASH_BITS bits, robust to re-encoding and small resizes; a candidate matches when the two
  8x8 luma thumbnails, each standardized, differ by at most THUMB_TOLERANCE on average (JPEG copies
  at quality 90, resized or not, came within 0.03; the closest distinct digits 0.1). Luma, because
  JPEG keeps it at full resolution and subsamples colour. The hash is computed on whole batches (a
  matrix product), not one picture at a time as imagehash does.
"""

from __future__ import annotations

import numpy as np

RTOL = 1e-3
ATOL = 1e-3
CANDIDATES = 3  # nearest training rows checked against the rule
PROJECTED = 32  # wide rows are projected to this many dimensions to find candidates
HASH_BITS = 8
THUMB_TOLERANCE = 0.05
LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601, as JPEG computes it


def table_matches(train: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Near-duplicate rows of `query` in `train` (raw feature values, one row per example)."""
    from sklearn.neighbors import NearestNeighbors

    train = train.reshape(len(train), -1).astype(np.float64)
    query = query.reshape(len(query), -1).astype(np.float64)
    found = np.full(len(query), -1, dtype=np.int64)
    if not len(train) or not len(query):
        return found
    mean, std = train.mean(axis=0), train.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    a, b = (train - mean) / std, (query - mean) / std
    if a.shape[1] > PROJECTED:  # Johnson-Lindenstrauss: near rows stay near
        projection = np.random.default_rng(0).normal(size=(a.shape[1], PROJECTED))
        a, b = a @ projection, b @ projection
    k = min(CANDIDATES, len(train))
    _, neighbours = NearestNeighbors(n_neighbors=k).fit(a).kneighbors(b)
    for column in range(k):
        candidate = neighbours[:, column]
        close = (
            np.abs(train[candidate] - query)
            <= RTOL * np.maximum(np.abs(train[candidate]), np.abs(query)) + ATOL * std
        )
        hit = close.all(axis=1) & (found < 0)
        found[hit] = candidate[hit]
    return found


def exact_matches(train: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Rows of `query` equal to a row of `train`, value for value."""
    seen: dict[bytes, int] = {}
    for i, row in enumerate(np.ascontiguousarray(train.reshape(len(train), -1))):
        seen.setdefault(row.tobytes(), i)
    rows = np.ascontiguousarray(query.reshape(len(query), -1).astype(train.dtype))
    return np.array([seen.get(row.tobytes(), -1) for row in rows], dtype=np.int64)


def _dct_matrix(size: int) -> np.ndarray:
    k, n = np.arange(size)[:, None], np.arange(size)[None, :]
    return np.cos(np.pi * (2 * n + 1) * k / (2 * size))


def image_signatures(batch) -> tuple[np.ndarray, np.ndarray]:
    """The 64-bit perceptual hash and the standardized 8x8 luma thumbnail of each image of a batch
    (a tensor N x C x H x W of pixels; both are invariant to brightness and contrast)."""
    import torch
    import torch.nn.functional as F

    pixels = batch.detach().float().cpu()
    if pixels.shape[1] == 3:
        grey = (pixels * torch.tensor(LUMA).view(1, 3, 1, 1)).sum(dim=1, keepdim=True)
    else:
        grey = pixels.mean(dim=1, keepdim=True)
    small = F.interpolate(grey, size=(32, 32), mode="bilinear", antialias=True)[:, 0].numpy()
    dct = _dct_matrix(32)
    low = (dct @ small.astype(np.float64) @ dct.T)[:, :8, :8].reshape(len(small), 64)
    bits = low > np.median(low[:, 1:], axis=1, keepdims=True)
    hashes = np.packbits(bits, axis=1).view(">u8")[:, 0].astype(np.uint64)
    thumbs = F.interpolate(grey, size=(8, 8), mode="bilinear", antialias=True)
    thumbs = thumbs.reshape(len(grey), -1)
    thumbs = (thumbs - thumbs.mean(dim=1, keepdim=True)) / thumbs.std(
        dim=1, keepdim=True
    ).clamp_min(1e-6)
    return hashes, thumbs.to(torch.float32).numpy()


BITS_SET = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bits that differ between 64-bit hashes (broadcast), byte by byte through a table: numpy's
    bitwise_count needs numpy 2."""
    differ = np.ascontiguousarray(np.bitwise_xor(a, b))
    return BITS_SET[differ.view(np.uint8)].reshape(*differ.shape, 8).sum(axis=-1, dtype=np.int64)


def image_matches(
    train: tuple[np.ndarray, np.ndarray], query: tuple[np.ndarray, np.ndarray]
) -> np.ndarray:
    """Images of `query` that are near copies of a training image ((hashes, thumbnails) each)."""
    train_hashes, train_thumbs = train
    query_hashes, query_thumbs = query
    found = np.full(len(query_hashes), -1, dtype=np.int64)
    chunk = max(1, 2_000_000 // max(len(train_hashes), 1))
    for start in range(0, len(query_hashes), chunk):
        rows = slice(start, start + chunk)
        distance = hamming(query_hashes[rows, None], train_hashes[None, :])
        for offset, candidates in enumerate(distance <= HASH_BITS):
            index = np.flatnonzero(candidates)
            if not len(index):
                continue
            gaps = np.abs(train_thumbs[index] - query_thumbs[start + offset]).mean(axis=1)
            if gaps.min() <= THUMB_TOLERANCE:
                found[start + offset] = index[gaps.argmin()]
    return found
