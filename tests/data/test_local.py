"""Local datasets: a missing path is a clear error and nothing is ever downloaded."""

from __future__ import annotations

import pytest

from robtest.data import cifar10, from_spec, image_folder, mnist
from robtest.errors import DatasetNotFoundError


@pytest.mark.parametrize("loader", [mnist, cifar10, image_folder])
def test_missing_path_names_it_and_never_downloads(loader, tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(DatasetNotFoundError, match=f"'{missing}'.*robtest never downloads"):
        loader(missing)
    assert not missing.exists()


def test_existing_folder_without_files(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="not the dataset files torchvision expects"):
        mnist(tmp_path)
    assert list(tmp_path.iterdir()) == []  # nothing was downloaded into it


def test_image_folder_reads_pngs(tmp_path):
    import torch
    from torchvision.utils import save_image

    for cls in ("cat", "dog"):
        (tmp_path / cls).mkdir()
        save_image(torch.rand(3, 8, 8, generator=torch.Generator().manual_seed(len(cls))), tmp_path / cls / "a.png")
    ds = from_spec(f"folder:{tmp_path}")
    x, y = ds[1]
    assert tuple(x.shape) == (3, 8, 8) and y == 1
