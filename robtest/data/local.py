"""MNIST, CIFAR-10 and image folders from a local path. robtest never downloads anything."""

from __future__ import annotations

from pathlib import Path

from torch.utils.data import Dataset

from robtest.errors import DatasetNotFoundError

__all__ = ["mnist", "cifar10", "image_folder"]

_NEVER = "robtest never downloads data: fetch it once on a machine with internet and point robtest at the folder"


def _existing(root: str | Path, what: str) -> Path:
    p = Path(root).expanduser()
    if not p.exists():
        raise DatasetNotFoundError(f"{what}: expected a local copy at '{p}' but that path does not exist; {_NEVER}")
    return p


def _torchvision(cls_name: str, root: Path, train: bool, what: str, layout: str) -> Dataset:
    import torchvision
    from torchvision.transforms import ToTensor

    cls = getattr(torchvision.datasets, cls_name)
    try:
        return cls(str(root), train=train, download=False, transform=ToTensor())
    except RuntimeError as exc:
        raise DatasetNotFoundError(
            f"{what}: found '{root}' but not the dataset files torchvision expects there ({layout}); {_NEVER}. "
            f"(torchvision said: {exc})"
        ) from None


def mnist(root: str | Path, *, train: bool = False) -> Dataset:
    """MNIST from ``root`` (the folder holding ``MNIST/raw``), images as (1, 28, 28) tensors in [0, 1]."""
    return _torchvision("MNIST", _existing(root, "mnist"), train, "mnist", "MNIST/raw/*-ubyte")


def cifar10(root: str | Path, *, train: bool = False) -> Dataset:
    """CIFAR-10 from ``root`` (the folder holding ``cifar-10-batches-py``), images (3, 32, 32) in [0, 1]."""
    return _torchvision("CIFAR10", _existing(root, "cifar10"), train, "cifar10", "cifar-10-batches-py/")


def image_folder(root: str | Path, *, size: int | None = None) -> Dataset:
    """An ImageFolder (one sub-folder per class) from ``root``; ``size`` resizes and centre-crops to a square."""
    from torchvision import datasets, transforms

    p = _existing(root, "folder")
    steps = [transforms.Resize(size), transforms.CenterCrop(size)] if size else []
    try:
        return datasets.ImageFolder(str(p), transform=transforms.Compose([*steps, transforms.ToTensor()]))
    except (FileNotFoundError, RuntimeError) as exc:
        raise DatasetNotFoundError(f"folder: expected one sub-folder of images per class under '{p}' ({exc})") from None
