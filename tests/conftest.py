"""Shared fixtures: the local MNIST mirror and small processed splits."""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

import pytest
import torch
import yaml

REPO = Path(__file__).resolve().parents[1]


def local_mirror() -> Path:
    """The MNIST mirror tests read: $GENZOO_DATA_MIRROR, else ../shared/data/mnist."""
    configured = os.environ.get("GENZOO_DATA_MIRROR")
    path = Path(configured) if configured else REPO.parent / "shared" / "data" / "mnist"
    if not (path / "train-images-idx3-ubyte.gz").exists():
        pytest.exit(f"no MNIST mirror at {path}: set GENZOO_DATA_MIRROR to a folder with the "
                    "four MNIST .gz files", returncode=3)
    return path


def smoke_params() -> dict:
    """The smoke config, ``tests/smoke/params.yaml`` (tiny networks, as written: no defaults)."""
    return yaml.safe_load((REPO / "tests/smoke/params.yaml").read_text())


def smoke_models() -> tuple[str, ...]:
    """The models of the smoke config, in its order (every pipeline and SLURM test runs them)."""
    return tuple(smoke_params()["models"])


PROJECT_FILES = ("Snakefile", "workflow", "src", "profiles", "slurm", "params-paper.yaml", "dvc.yaml")


def make_project(root: Path) -> Path:
    """The project as a user has it (symbolic links kept: ./profiles -> workflow/profiles, so
    Snakemake reads the workflow profile; ./slurm), with the smoke config as its params.yaml."""
    root.mkdir(parents=True, exist_ok=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    for name in PROJECT_FILES:
        source = REPO / name
        if source.is_symlink():
            os.symlink(os.readlink(source), root / name)
        elif source.is_dir():
            shutil.copytree(source, root / name, symlinks=True, ignore=ignore)
        else:
            shutil.copy2(source, root / name)
    shutil.copy2(REPO / "tests/smoke/params.yaml", root / "params.yaml")
    return root


def pattern_split(count: int, *, patterns: int, shape: tuple[int, int, int]) -> "Split":
    """``count`` images cycling through ``patterns`` fixed random binary patterns of ``shape``
    (grey 0 or 255: every binarization gives the same bits), labelled by pattern."""
    from genzoo.data import Split

    gen = torch.Generator().manual_seed(1)
    drawn = (torch.rand(patterns, *shape, generator=gen) < 0.5).to(torch.uint8) * 255
    labels = torch.arange(count) % patterns
    gray = drawn[labels]
    return Split(gray=gray, labels=labels, binary=gray // 255)


def labels(model, n: int, seed: int = 0) -> torch.Tensor | None:
    """Random class labels (n,) for a conditional model, None for the others."""
    if not model.conditional:
        return None
    return torch.randint(0, model.num_classes, (n,), generator=torch.Generator().manual_seed(seed))


def dependencies(model, shape=(1, 4, 4), images: int = 4) -> torch.Tensor:
    """dep[d, j]: d logit_d / d x_j != 0 at one of a few random binary images, (D, D) bool
    (several images, so that a ReLU that happens to be off cannot hide a dependency)."""
    D = shape[0] * shape[1] * shape[2]
    g = torch.Generator().manual_seed(2)
    x = (torch.rand(images, *shape, dtype=torch.float64, generator=g) < 0.5).double()
    y = labels(model, images)
    jacobian = torch.autograd.functional.jacobian(
        lambda inp: model(inp, y).flatten(1).sum(0), x)  # (D, images, C, H, W)
    return (jacobian.reshape(D, images, D) != 0).any(1)


@contextlib.contextmanager
def edited(path: Path, old: str, new: str):
    """`path` with its first `old` replaced by `new` inside the block, as it was after it."""
    original = path.read_text()
    assert old in original, f"{old!r} not in {path}"
    path.write_text(original.replace(old, new, 1))
    try:
        yield
    finally:
        path.write_text(original)


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
