"""The dataset registry and the datasets beyond MNIST: Fashion-MNIST (from Debian's package),
coloured MNIST (derived, reproducible), CIFAR-10 (from a small archive written here) and the
unpickler that reads it."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import json
import os
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from genzoo import data, datasets
from genzoo.cli import main
from genzoo.data import DataError, Split, download, epoch_batches, levels_of, load_split, prepare
from genzoo.datasets import (CIFAR10, CIFAR10_ARCHIVE, DATASETS, HUE_TINTS, colour_digits,
                             dataset, digit_colours, load_pickle, variant_of)

IN_CI = os.environ.get("CI", "").lower() == "true"  # as tests/test_slurm.py: CI must not skip
DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")  # apt-get install dataset-fashion-mnist


@pytest.fixture(autouse=True)
def _no_environment_mirrors(monkeypatch):
    """These tests choose their mirrors; a mirror variable set in CI would go first."""
    for spec in DATASETS.values():
        monkeypatch.delenv(spec.mirror_env, raising=False)


# --------------------------------------------------------------------------------------------
# The registry
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_every_entry_is_complete_and_consistent(name):
    spec = dataset(name)
    assert spec.name == name and spec.title and spec.citation
    channels, height, width = spec.image_shape
    assert channels == (3 if spec.colour else 1) and height == width
    assert spec.num_classes == len(spec.class_names) == 10
    assert spec.raw_source in DATASETS
    assert set(spec.checksums) == set(spec.raw_files)
    assert all(len(md5) == 32 and int(md5, 16) >= 0 for md5 in spec.checksums.values())
    assert spec.mirrors and spec.mirror_env.startswith("GENZOO_")
    assert spec.variants == (("rgb",) if spec.colour else ("binarized", "grayscale"))


def test_known_checksums_and_mirror_variables():
    assert dataset("cifar10").checksums == {CIFAR10_ARCHIVE: "c58f30108f718f92721af3b95e74349a"}
    assert dataset("mnist").mirror_env == data.MIRROR_ENV == "GENZOO_DATA_MIRROR"
    assert dataset("fashion_mnist").mirror_env == "GENZOO_FASHION_MNIST_MIRROR"
    assert dataset("cifar10").mirror_env == "GENZOO_CIFAR10_MIRROR"
    # Colored MNIST is MNIST's files, coloured: same download, same variable.
    assert data.raw_files("colored_mnist") == data.raw_files("mnist") == data.RAW_FILES
    assert dataset("colored_mnist").raw_source == "mnist"
    assert data.raw_files("cifar10") == (CIFAR10_ARCHIVE,)
    assert data.MNIST_MD5["train-images-idx3-ubyte"] == "6bbc9ace898e44ae57da46a324031adb"


def test_unknown_dataset_is_one_line_naming_the_known_ones():
    with pytest.raises(ValueError, match=r"^unknown dataset 'svhn' \(known: mnist, fashion_mnist, "
                                         r"colored_mnist, cifar10\)$"):
        dataset("svhn")


def test_variant_of():
    assert variant_of("mnist", "binarized") == "binarized"
    assert variant_of("fashion_mnist", "grayscale") == "grayscale"
    assert variant_of("colored_mnist", "binarized") == "rgb"  # colour sets: always 256 levels
    assert variant_of("cifar10", "grayscale") == "rgb"
    with pytest.raises(ValueError, match="data.variant must be one of binarized, grayscale"):
        variant_of("mnist", "rgb")
    assert levels_of("rgb") == levels_of("grayscale") == 256 and levels_of("binarized") == 2


def test_environment_mirror_of_the_dataset_goes_first(monkeypatch, tmp_path):
    monkeypatch.setenv("GENZOO_FASHION_MNIST_MIRROR", str(tmp_path))
    assert data.resolve_mirrors(None, "fashion_mnist") == [str(tmp_path),
                                                            *dataset("fashion_mnist").mirrors]
    assert data.resolve_mirrors(["/a"], "mnist") == ["/a"]  # MNIST's variable is another one
    monkeypatch.setenv("GENZOO_DATA_MIRROR", "/local/mnist")
    assert data.resolve_mirrors([], "colored_mnist") == ["/local/mnist"]


# --------------------------------------------------------------------------------------------
# Fashion-MNIST (Xiao et al. 2017), from Debian's dataset-fashion-mnist
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fashion_folder() -> Path:
    if not (DEBIAN_FASHION / "train-images-idx3-ubyte.gz").exists():
        reason = f"no Fashion-MNIST at {DEBIAN_FASHION} (apt-get install dataset-fashion-mnist)"
        if IN_CI:
            pytest.fail(f"CI=true but {reason}", pytrace=False)
        pytest.skip(reason)
    return DEBIAN_FASHION


def test_fashion_mnist_from_the_debian_folder(tmp_path, fashion_folder):
    # Debian recompresses the files (their .gz MD5s are not Zalando's); the content is official.
    paths = download(tmp_path / "raw", [fashion_folder.as_uri()], dataset="fashion_mnist",
                     progress=False)
    assert [path.name for path in paths] == list(data.raw_files("fashion_mnist"))
    prepare("fashion_mnist", tmp_path / "raw", tmp_path / "processed", val_size=10_000, seed=0)
    splits = {name: load_split(tmp_path / "processed" / f"{name}.npz") for name in data.SPLITS}
    assert [len(splits[name]) for name in data.SPLITS] == [50_000, 10_000, 10_000]
    assert splits["train"].gray.shape == (50_000, 1, 28, 28) and splits["train"].binary is None
    assert splits["test"].binary.shape == (10_000, 1, 28, 28)
    # Xiao et al. 2017: 7,000 images per class, 1,000 of them in the test set.
    assert torch.bincount(splits["test"].labels).tolist() == [1000] * 10
    labels = torch.cat([splits["train"].labels, splits["val"].labels])
    assert torch.bincount(labels).tolist() == [6000] * 10
    with np.load(tmp_path / "processed" / "val.npz") as stored:  # one channel: stored (N, 28, 28)
        assert stored["gray"].shape == stored["binary"].shape == (10_000, 28, 28)


def test_mnist_files_are_no_fashion_mnist(tmp_path, mirror):
    """Same file names, other content: the checksum tells them apart."""
    with pytest.raises(DataError, match=r"^could not get train-images-idx3-ubyte\.gz; tried: "
                                        r".*checksum mismatch: MD5 6bbc9ace898e44ae57da46a324031adb, "
                                        r"expected f4a8712d7a061bf5bd6d2ca38dc4d50a.*"
                                        r"GENZOO_FASHION_MNIST_MIRROR") as info:
        download(tmp_path / "raw", [str(mirror)], dataset="fashion_mnist", progress=False)
    assert str(mirror) in str(info.value) and "\n" not in str(info.value)
    assert not (tmp_path / "raw").exists() or not any((tmp_path / "raw").iterdir())


def test_a_recompressed_copy_is_as_good(tmp_path, mirror):
    """The check is on the decompressed content (a mirror may recompress, as Debian does)."""
    copy = tmp_path / "recompressed"
    copy.mkdir()
    for name in data.RAW_FILES:
        content = gzip.decompress((mirror / name).read_bytes())
        (copy / name).write_bytes(gzip.compress(content, compresslevel=1, mtime=0))
    assert (copy / data.RAW_FILES[0]).read_bytes() != (mirror / data.RAW_FILES[0]).read_bytes()
    download(tmp_path / "raw", [str(copy)], progress=False)


# --------------------------------------------------------------------------------------------
# Colored MNIST
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits(mirror) -> np.ndarray:
    """The first 2,000 MNIST test digits, (2000, 28, 28) uint8."""
    payload = gzip.decompress((mirror / "t10k-images-idx3-ubyte.gz").read_bytes())
    return data.read_idx(payload)[:2000]


# SHA-256 of colour_digits(the first 2,000 MNIST test digits, seed=0, stream=10).
COLOURED_SHA256 = "1e5787fe1b52932c3bdc4a374b2f53604d0f13117eb8497619c0fe475c806a1a"


def test_colours_are_reproducible_from_the_seed(digits):
    first = colour_digits(digits, seed=0, stream=10)
    assert first.shape == (2000, 3, 28, 28) and first.dtype == np.uint8
    assert np.array_equal(first, colour_digits(digits, seed=0, stream=10))
    assert not np.array_equal(first, colour_digits(digits, seed=1, stream=10))
    assert not np.array_equal(first, colour_digits(digits, seed=0, stream=11))
    # Integer arithmetic on PCG64's raw words: these bytes on every machine and numpy version.
    assert hashlib.sha256(first.tobytes()).hexdigest() == COLOURED_SHA256


def test_a_digit_stands_out_from_its_background(digits):
    fg, bg = digit_colours(70_000, seed=0, stream=10)
    assert fg.min() >= 0 and bg.min() >= 0 and fg.max() <= 255 and bg.max() <= 255  # no clipping
    # Hue tints sum to zero: the channel means differ by the lightness gap, at least 65 levels.
    assert np.abs(fg.mean(axis=1) - bg.mean(axis=1)).min() >= 65
    coloured = colour_digits(digits, seed=0, stream=10).astype(int)
    fg, bg = digit_colours(len(digits), seed=0, stream=10)
    for image, gray, ink, paper in zip(coloured[:100], digits[:100], fg, bg):
        assert (image[:, gray == 255].T == ink).all() and (image[:, gray == 0].T == paper).all()


def test_channels_are_correlated_but_not_grey(digits):
    fg, bg = digit_colours(10_000, seed=0, stream=10)
    colours = np.concatenate([fg, bg])  # (20000, 3)
    correlation = np.corrcoef(colours.T)  # (3, 3)
    assert correlation[np.triu_indices(3, 1)].min() > 0.5
    assert (np.ptp(colours, axis=1) > 20).mean() > 0.9  # mostly clearly coloured, not grey
    # Two hue families per image: a colour minus its channel mean has its tint's signs (tints
    # are +-20 or +-40, the jitter moves a channel off the mean by under 11), distinct per family.
    assert len({tuple(np.sign(tint)) for tint in HUE_TINTS}) == len(HUE_TINTS)
    signs = [np.sign(c - c.mean(axis=1, keepdims=True)) for c in (fg, bg)]
    assert (signs[0] != signs[1]).any(axis=1).all()
    pixels = colour_digits(digits[:200], seed=0, stream=10).transpose(1, 0, 2, 3).reshape(3, -1)
    assert np.corrcoef(pixels.astype(float))[np.triu_indices(3, 1)].min() > 0.5


@pytest.fixture(scope="module")
def coloured(tmp_path_factory, mirror) -> Path:
    """Colored MNIST's splits, made from the local MNIST mirror (its raw files)."""
    out = tmp_path_factory.mktemp("colored") / "processed"
    prepare("colored_mnist", mirror, out, val_size=10_000, seed=0)
    return out


def test_coloured_mnist_splits(coloured, processed):
    for name, size in zip(data.SPLITS, (50_000, 10_000, 10_000)):
        split = load_split(coloured / f"{name}.npz")
        grey = load_split(processed / f"{name}.npz")
        assert split.gray.shape == (size, 3, 28, 28) and split.gray.dtype == torch.uint8
        assert split.binary is None  # colour sets are never binarized
        assert torch.equal(split.labels, grey.labels)  # the labels are the digits
        with np.load(coloured / f"{name}.npz") as stored:
            assert sorted(stored.files) == ["gray", "labels"]
            assert stored["gray"].shape == (size, 3, 28, 28)


def test_rgb_batches_are_levels_not_bits(coloured):
    split = load_split(coloured / "val.npz").subset(300)
    assert torch.equal(split.images("rgb"), split.gray.float())
    x, y = next(epoch_batches(split, variant="rgb", batch_size=64, seed=0, epoch=0))
    assert x.shape == (64, 3, 28, 28) and x.max() > 1  # 0..255, not Bernoulli bits
    assert set(x.flatten().tolist()) <= set(range(256))


# --------------------------------------------------------------------------------------------
# CIFAR-10 (Krizhevsky 2009), from a small archive in the official format
# --------------------------------------------------------------------------------------------

PER_BATCH = 12  # images per batch of the fixture: 60 training images, 12 test images


def cifar_batch(first: int, count: int) -> dict[bytes, object]:
    """A batch as the official pickles hold it: (count, 3072) uint8 rows (1024 red values, then
    green, then blue, each plane row by row) and a list of int labels. Red encodes the pixel's
    position, green the image's index, blue its label."""
    index = np.arange(first, first + count)
    labels = (index * 7) % 10
    red = np.broadcast_to(np.arange(1024) % 256, (count, 1024))
    green = np.broadcast_to((index % 256)[:, None], (count, 1024))
    blue = np.broadcast_to((labels * 20)[:, None], (count, 1024))
    rows = np.concatenate([red, green, blue], axis=1).astype(np.uint8)  # (count, 3072)
    return {b"batch_label": b"fixture", b"labels": labels.tolist(), b"data": rows,
            b"filenames": [f"image_{i}.png".encode() for i in index]}


def write_cifar_archive(path: Path, batches: dict[str, bytes] | None = None) -> Path:
    """A cifar-10-python.tar.gz with the official member names; the pickles are Python 3's (the
    official ones are Python 2's: same opcodes for dicts, lists and arrays, str for bytes)."""
    if batches is None:
        names = [*datasets.CIFAR10_TRAIN_BATCHES, datasets.CIFAR10_TEST_BATCH]
        batches = {name: pickle.dumps(cifar_batch(i * PER_BATCH, PER_BATCH))
                   for i, name in enumerate(names)}
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as archive:
        for name, payload in batches.items():
            member = tarfile.TarInfo(f"{datasets.CIFAR10_FOLDER}/{name}")
            member.size = len(payload)
            archive.addfile(member, io.BytesIO(payload))
    return path


@pytest.fixture
def fixture_cifar(tmp_path, monkeypatch) -> Path:
    """A folder holding a small CIFAR-10 archive, and the registry's cifar10 entry expecting that
    archive's MD5 (the check itself unchanged)."""
    archive = write_cifar_archive(tmp_path / "mirror" / CIFAR10_ARCHIVE)
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    monkeypatch.setitem(DATASETS, "cifar10",
                        dataclasses.replace(CIFAR10, checksums={CIFAR10_ARCHIVE: md5}))
    return archive.parent


def test_cifar10_from_an_archive(tmp_path, fixture_cifar, monkeypatch):
    monkeypatch.setenv("GENZOO_CIFAR10_MIRROR", str(fixture_cifar))  # the local copy goes first
    download(tmp_path / "raw", [], dataset="cifar10", progress=False)
    settings = tmp_path / "data.json"
    settings.write_text(json.dumps({"dataset": "cifar10", "seed": 0, "val_size": 20,
                                    "sources": {}}))
    assert main(["prepare", "--settings", str(settings), "--raw-dir", str(tmp_path / "raw"),
                 "--out-dir", str(tmp_path / "processed")]) == 0
    splits = {name: load_split(tmp_path / "processed" / f"{name}.npz") for name in data.SPLITS}
    assert [len(splits[name]) for name in data.SPLITS] == [40, 20, 12]
    train, val, test = (splits[name] for name in data.SPLITS)
    assert train.gray.shape == (40, 3, 32, 32) and all(s.binary is None for s in splits.values())
    assert train.gray[:, 0].flatten(1).tolist()[0] == [i % 256 for i in range(1024)]  # row-major
    assert train.gray[:, 1, 0, 0].tolist() == list(range(40))  # images in batch order
    assert val.gray[:, 1, 5, 5].tolist() == list(range(40, 60))  # validation: the last 20
    assert test.gray[:, 1, 0, 0].tolist() == list(range(60, 72))
    for split in splits.values():  # blue = 20 * label
        assert torch.equal(split.gray[:, 2, 31, 31].long(), split.labels * 20)
        assert split.labels.dtype == torch.int64


def test_the_real_cifar10_checksum_is_checked(tmp_path):
    archive = write_cifar_archive(tmp_path / "mirror" / CIFAR10_ARCHIVE)
    with pytest.raises(DataError, match=r"cifar-10-python\.tar\.gz.*checksum mismatch.*"
                                        r"expected c58f30108f718f92721af3b95e74349a"):
        download(tmp_path / "raw", [str(archive.parent)], dataset="cifar10", progress=False)


def test_no_cifar10_anywhere_says_how_to_point_at_a_copy(tmp_path):
    with pytest.raises(DataError) as info:
        download(tmp_path / "raw", [str(tmp_path / "nowhere")], dataset="cifar10", progress=False)
    result_lines = str(info.value).splitlines()
    assert len(result_lines) == 1
    assert result_lines[0].startswith("could not get cifar-10-python.tar.gz; tried: ")
    assert str(tmp_path / "nowhere") in result_lines[0]
    assert "set $GENZOO_CIFAR10_MIRROR to the folder holding it" in result_lines[0]


def test_prepare_without_the_archive_is_one_line(tmp_path):
    with pytest.raises(DataError, match=r"^missing .*cifar-10-python\.tar\.gz: run the download"):
        prepare("cifar10", tmp_path / "raw", tmp_path / "processed")
    assert not (tmp_path / "processed").exists()


# --------------------------------------------------------------------------------------------
# The restricted unpickler
# --------------------------------------------------------------------------------------------


class RunsAShellCommand:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_the_unpickler_refuses_os_system(tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps({b"data": RunsAShellCommand(marker)})
    with pytest.raises(pickle.UnpicklingError, match=r"refusing to load (posix|os)\.system"):
        load_pickle(payload)
    assert not marker.exists()


def test_a_malicious_batch_in_the_archive_is_a_data_error(tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    batches = {name: pickle.dumps(cifar_batch(0, 2))
               for name in [*datasets.CIFAR10_TRAIN_BATCHES, datasets.CIFAR10_TEST_BATCH]}
    batches["data_batch_3"] = pickle.dumps({b"data": RunsAShellCommand(marker), b"labels": []})
    archive = write_cifar_archive(tmp_path / "raw" / CIFAR10_ARCHIVE, batches)
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    monkeypatch.setitem(DATASETS, "cifar10",
                        dataclasses.replace(CIFAR10, checksums={CIFAR10_ARCHIVE: md5}))
    with pytest.raises(DataError, match=r"not a CIFAR-10 python archive \(refusing to load"):
        prepare("cifar10", tmp_path / "raw", tmp_path / "processed", val_size=2)
    assert not marker.exists() and not (tmp_path / "processed").exists()


@pytest.mark.parametrize("module, name", [("builtins", "eval"), ("numpy", "load"),
                                          ("subprocess", "Popen"), ("numpy.testing", "ndarray")])
def test_the_unpickler_allows_nothing_but_arrays(module, name):
    with pytest.raises(pickle.UnpicklingError, match=f"refusing to load {module}.{name}"):
        datasets.ArrayUnpickler(io.BytesIO(b"")).find_class(module, name)


def test_the_unpickler_reads_arrays_under_both_numpy_spellings():
    unpickler = datasets.ArrayUnpickler(io.BytesIO(b""))
    official = unpickler.find_class("numpy.core.multiarray", "_reconstruct")  # numpy 1.x pickles
    assert official is unpickler.find_class("numpy._core.multiarray", "_reconstruct")
    array = np.arange(12, dtype=np.uint8).reshape(3, 4)
    loaded = load_pickle(pickle.dumps({b"data": array, b"labels": [1, 2, 3]}))
    assert np.array_equal(loaded[b"data"], array) and loaded[b"labels"] == [1, 2, 3]


def test_split_images_keep_their_channels():
    gray = torch.randint(0, 256, (5, 3, 4, 4), dtype=torch.uint8)
    split = Split(gray=gray, labels=torch.arange(5))
    assert torch.equal(split.images("rgb"), gray.float()) and split.subset(2).gray.shape[1] == 3
