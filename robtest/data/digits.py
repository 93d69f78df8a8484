"""scikit-learn's handwritten digits: the real dataset robtest ships with (through scikit-learn).

1797 grey images of 8×8 pixels, values 0–16 scaled to [0, 1]. The split is stratified 70/30 with
``random_state=seed`` (default 0): 1257 training and 540 test images. ``size=28`` upsamples bilinearly
(``align_corners=False``) to MNIST's 28×28, clipped to [0, 1].
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

from robtest.errors import InvalidArgument
from robtest.validation import integer

__all__ = ["digits", "digits_tensors"]

SPLITS = ("train", "test", "all")


@functools.lru_cache(maxsize=8)
def _split(seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    x = torch.tensor(bunch.images, dtype=torch.float32, device="cpu").unsqueeze(1) / 16.0
    y = torch.tensor(bunch.target, dtype=torch.long, device="cpu")
    idx = torch.arange(len(y), device="cpu").numpy()
    tr, te = train_test_split(idx, test_size=0.3, random_state=seed, stratify=bunch.target)
    tr, te = torch.as_tensor(sorted(tr), device="cpu"), torch.as_tensor(sorted(te), device="cpu")
    return x[tr], y[tr], x[te], y[te]


def digits_tensors(split: str = "test", *, size: int = 8, seed: int = 0, classes: tuple[int, ...] | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """The digits as tensors ``(x, y)``: x (N, 1, size, size) float in [0, 1], y (N,) long.

    ``classes`` keeps only those digits and relabels them 0..k-1 in the order given (e.g. ``(3, 7)``).

    >>> x, y = digits_tensors("test")
    >>> tuple(x.shape), tuple(y.shape), float(x.min()), float(x.max())
    ((540, 1, 8, 8), (540,), 0.0, 1.0)
    """
    if split not in SPLITS:
        raise InvalidArgument(f"split: expected one of {SPLITS} but got {split!r}")
    integer("size", size, low=8, hint=" (e.g. 28)")
    xtr, ytr, xte, yte = _split(int(seed))
    if split == "train":
        x, y = xtr, ytr
    elif split == "test":
        x, y = xte, yte
    else:
        x, y = torch.cat([xtr, xte]), torch.cat([ytr, yte])
    if classes is not None:
        keep = torch.isin(y, torch.tensor(classes, device="cpu"))
        x, y = x[keep], y[keep]
        remap = torch.full((10,), -1, dtype=torch.long, device="cpu")
        remap[torch.tensor(classes, device="cpu")] = torch.arange(len(classes), device="cpu")
        y = remap[y]
    if size != 8:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False).clamp_(0.0, 1.0)
    return x.clone(), y.clone()


def digits(
    split: str = "test", *, size: int = 8, seed: int = 0, classes: tuple[int, ...] | None = None
) -> TensorDataset:
    """The digits as a ``TensorDataset`` (see :func:`digits_tensors`)."""
    return TensorDataset(*digits_tensors(split, size=size, seed=seed, classes=classes))
