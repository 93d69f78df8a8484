"""Data robtest can evaluate on: the embedded digits, local MNIST/CIFAR-10/image folders, synthetic sets
(concentric spheres, Gaussian and uniform noise), and adapters.

``from_spec`` reads the ``--robust-data`` option: ``digits`` (8×8), ``digits28`` (upsampled to 28×28),
``mnist:PATH``, ``cifar10:PATH``, ``folder:PATH``.
"""

from __future__ import annotations

from torch.utils.data import Dataset

from robtest.data._source import indexed_source, iter_batches, iter_indexed, num_samples, order
from robtest.data.digits import digits, digits_tensors
from robtest.data.local import cifar10, image_folder, mnist
from robtest.data.synthetic import gaussian_noise, spheres, uniform_noise
from robtest.errors import InvalidArgument

__all__ = ["cifar10", "digits", "digits_tensors", "from_spec", "gaussian_noise", "image_folder", "indexed_source",
           "iter_batches", "iter_indexed", "mnist", "num_samples", "order", "spheres", "uniform_noise"]

SPEC_HELP = "'digits', 'digits28', 'mnist:PATH', 'cifar10:PATH' or 'folder:PATH'"


def from_spec(spec: str, *, split: str = "test") -> Dataset:
    """The dataset a ``--robust-data`` value names; ``split`` is "train" or "test" (folders have no split)."""
    kind, _, path = (spec or "digits").partition(":")
    kind = kind.strip().lower()
    train = split == "train"
    if kind in ("digits", "digits8") and not path:
        return digits(split)
    if kind == "digits28" and not path:
        return digits(split, size=28)
    if kind == "mnist" and path:
        return mnist(path, train=train)
    if kind == "cifar10" and path:
        return cifar10(path, train=train)
    if kind == "folder" and path:
        return image_folder(path)
    raise InvalidArgument(f"robust data: expected {SPEC_HELP} but got {spec!r}")
