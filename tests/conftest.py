"""Shared fixtures: the local MNIST mirror and small processed splits."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


def local_mirror() -> Path:
    """The MNIST mirror tests read: $GENZOO_DATA_MIRROR, else ../shared/data/mnist."""
    configured = os.environ.get("GENZOO_DATA_MIRROR")
    path = Path(configured) if configured else REPO.parent / "shared" / "data" / "mnist"
    if not (path / "train-images-idx3-ubyte.gz").exists():
        pytest.exit(f"no MNIST mirror at {path}: set GENZOO_DATA_MIRROR to a folder with the "
                    "four MNIST .gz files", returncode=3)
    return path


@pytest.fixture(scope="session")
def mirror() -> Path:
    return local_mirror()


@pytest.fixture(scope="session")
def processed(tmp_path_factory, mirror) -> Path:
    """data/processed built once per session from the local mirror."""
    from genzoo.data import binarize, download

    root = tmp_path_factory.mktemp("mnist")
    download(root / "raw", [str(mirror)], progress=False)
    binarize(root / "raw", root / "processed", val_size=10_000, seed=0)
    return root / "processed"


@pytest.fixture(autouse=True)
def _deterministic_threads():
    torch.set_num_threads(1)
    yield
