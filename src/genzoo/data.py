"""Datasets on disk: mirrors, checksum verification, parsing, splits, in-memory datasets.

Which datasets exist, and what is specific to each, is in ``genzoo.datasets``; this module does
the same for all of them. The raw files come from an ordered list of mirrors (local folders,
``file://`` or ``http(s)://`` URLs), the dataset's own environment variable naming a folder to
try first (``$GENZOO_DATA_MIRROR`` for MNIST). Each file must match its official MD5 (of the
decompressed content for gzipped IDX files); anything else (unreachable mirror, missing file,
truncated gzip, checksum mismatch) moves on to the next mirror and, when no mirror is left, fails
with one line naming the file and every mirror tried.

The splits follow DESIGN.md: train = the first N - ``val_size`` training images, validation = the
last ``val_size``, test = the test set (50,000/10,000/10,000 for MNIST). Grey sets are modelled
binarized or with their 256 levels: training batches are binarized afresh every epoch
(Bernoulli(pixel / 255)); validation and test are binarized once with a fixed seed and stored, so
every model is scored on the same bits. Colour sets are always modelled with their 256 levels
(variant ``rgb``).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import struct
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from tqdm import tqdm

from . import datasets
from .datasets import COLOUR_VARIANT, MNIST, Dataset, read_cifar10, source_of

MIRROR_ENV = MNIST.mirror_env  # GENZOO_DATA_MIRROR

# Official MD5 sums of the *decompressed* MNIST IDX files, by file stem.
MNIST_MD5 = {name.removesuffix(".gz"): md5 for name, md5 in MNIST.checksums.items()}
RAW_FILES = MNIST.raw_files  # MNIST's raw files (the workflow's download outputs, for now)
SPLITS = ("train", "val", "test")


def raw_files(name: str) -> tuple[str, ...]:
    """The files the download of dataset ``name`` puts in the raw folder (its source's)."""
    return source_of(name).raw_files


class DataError(RuntimeError):
    """A data problem the user must fix (bad mirror, corrupt file, missing split)."""


# --------------------------------------------------------------------------------------------
# Download
# --------------------------------------------------------------------------------------------


def resolve_mirrors(mirrors: Sequence[str] | None, dataset: str = "mnist") -> list[str]:
    """The mirrors to try for ``dataset``'s raw files, in order: the folder its environment
    variable names first (``$GENZOO_DATA_MIRROR`` for MNIST) when set, then ``mirrors`` (``None``:
    the registry's defaults)."""
    source = source_of(dataset)
    extra = os.environ.get(source.mirror_env, "").strip()
    listed = source.mirrors if mirrors is None else mirrors
    ordered = ([extra] if extra else []) + list(listed)
    return list(dict.fromkeys(ordered))  # drop duplicates, keep order


def _read_from_mirror(mirror: str, filename: str, progress: bool) -> bytes:
    """The bytes of ``filename`` at ``mirror`` (a folder, file:// or http(s):// URL)."""
    parsed = urllib.parse.urlparse(mirror)
    if parsed.scheme in ("http", "https"):
        url = mirror.rstrip("/") + "/" + filename
        with urllib.request.urlopen(url, timeout=30) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            buffer = io.BytesIO()
            with tqdm(total=total, unit="B", unit_scale=True, desc=filename,
                      disable=not progress, leave=False) as bar:
                while chunk := response.read(1 << 16):
                    buffer.write(chunk)
                    bar.update(len(chunk))
            return buffer.getvalue()
    if parsed.scheme == "file":
        folder = Path(urllib.request.url2pathname(parsed.path))
    elif parsed.scheme == "":
        folder = Path(mirror).expanduser()
    else:
        raise DataError(f"unsupported mirror scheme {parsed.scheme!r} in {mirror!r}")
    if not folder.is_dir():
        raise FileNotFoundError(f"mirror folder {folder} does not exist")
    return (folder / filename).read_bytes()


def _md5_of_content(spec: Dataset, payload: bytes) -> str:
    """MD5 of what the official checksum covers: the decompressed file for gzipped IDX files
    (so a recompressed copy is as good), the file itself otherwise."""
    if spec.raw_format != "idx":
        return hashlib.md5(payload).hexdigest()
    try:
        content = gzip.decompress(payload)
    except (EOFError, gzip.BadGzipFile, OSError, zlib.error) as error:  # zlib: a damaged stream
        raise DataError(f"truncated or corrupt gzip ({error})") from None
    return hashlib.md5(content).hexdigest()


def verify(dataset: str, filename: str, payload: bytes) -> None:
    """Raise DataError unless ``payload`` is a good copy of ``dataset``'s raw file ``filename``
    (a truncated or corrupt gzip, or content with the wrong MD5)."""
    spec = source_of(dataset)
    digest = _md5_of_content(spec, payload)
    expected = spec.checksums[filename]
    if digest != expected:
        raise DataError(f"checksum mismatch: MD5 {digest}, expected {expected}")


def _describe(error: BaseException) -> str:
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code}"
    if isinstance(error, urllib.error.URLError):
        return f"unreachable ({error.reason})"
    if isinstance(error, FileNotFoundError):
        return "file missing" if "mirror folder" not in str(error) else "unreachable (no such folder)"
    if isinstance(error, (TimeoutError, ConnectionError)):
        return f"unreachable ({error})"
    return str(error)


_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write_bytes(path: Path, payload: bytes) -> None:
    """Write via a temp file in the same folder, then rename: never a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _fetch(dataset: str, filename: str, mirrors: list[str], progress: bool) -> bytes:
    """A verified copy of ``filename`` from the first mirror that has one."""
    failures = []
    for mirror in mirrors:
        try:
            payload = _read_from_mirror(mirror, filename, progress)
            verify(dataset, filename, payload)
            return payload
        except (DataError, OSError, urllib.error.URLError, ValueError) as error:
            failures.append(f"{mirror} ({_describe(error)})")
    env = source_of(dataset).mirror_env
    raise DataError(f"could not get {filename}; tried: " + "; ".join(failures)
                    + f" (to use a local copy, set ${env} to the folder holding it)")


def download(out_dir: Path, mirrors: Sequence[str] | None = None, *, dataset: str = "mnist",
             progress: bool = True) -> list[Path]:
    """Fetch ``dataset``'s raw files into ``out_dir``, verifying each against its official MD5.

    A derived dataset downloads its source's files (coloured MNIST: MNIST's). ``mirrors`` of
    ``None`` means the registry's defaults. Files already present with the right checksum are
    kept. Raises DataError naming the file and every mirror tried when no mirror serves a good
    copy; nothing partial is left behind.
    """
    out_dir = Path(out_dir)
    source = source_of(dataset)
    mirrors = resolve_mirrors(mirrors, dataset)
    if not mirrors:
        raise DataError(f"no {source.title} mirror configured (no mirror given and "
                        f"${source.mirror_env} unset)")
    written = []
    for filename in source.raw_files:
        target = out_dir / filename
        if target.exists():
            try:
                verify(dataset, filename, target.read_bytes())
                written.append(target)
                continue
            except DataError:
                target.unlink()
        atomic_write_bytes(target, _fetch(dataset, filename, mirrors, progress))
        written.append(target)
    return written


# --------------------------------------------------------------------------------------------
# Parsing and splitting
# --------------------------------------------------------------------------------------------

_IDX_DTYPES = {0x08: np.uint8}


def read_idx(payload: bytes) -> np.ndarray:
    """Parse an IDX file (the MNIST container format) into a numpy array."""
    if len(payload) < 4:
        raise DataError("IDX payload too short")
    zero, dtype_code, ndim = struct.unpack(">HBB", payload[:4])
    if zero != 0 or dtype_code not in _IDX_DTYPES:
        raise DataError(f"not an unsigned-byte IDX file (magic {payload[:4].hex()})")
    shape = struct.unpack(f">{ndim}I", payload[4:4 + 4 * ndim])
    data = np.frombuffer(payload, dtype=_IDX_DTYPES[dtype_code], offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise DataError(f"IDX size mismatch: header says {shape}, found {data.size} values")
    return data.reshape(shape)


def _read_verified(raw_dir: Path, dataset: str, filename: str) -> bytes:
    """The bytes of a raw file, checked against its official MD5."""
    path = Path(raw_dir) / filename
    if not path.exists():
        raise DataError(f"missing {path}: run the download stage first")
    payload = path.read_bytes()
    try:
        verify(dataset, filename, payload)
    except DataError as error:
        raise DataError(f"{path}: {error}") from None
    return payload


def _read_idx_set(raw_dir: Path, dataset: str) -> tuple[np.ndarray, ...]:
    """Train images (N, H, W), train labels, test images, test labels of an IDX dataset."""
    return tuple(read_idx(gzip.decompress(_read_verified(raw_dir, dataset, filename)))
                 for filename in source_of(dataset).raw_files)


def _read_cifar_set(raw_dir: Path, dataset: str) -> tuple[np.ndarray, ...]:
    """Train images (N, 3, H, W), train labels, test images, test labels of the CIFAR archive."""
    (filename,) = source_of(dataset).raw_files
    payload = _read_verified(raw_dir, dataset, filename)
    try:
        return read_cifar10(payload)
    except (ValueError, KeyError, EOFError, tarfile.TarError, pickle.UnpicklingError) as error:
        raise DataError(f"{Path(raw_dir) / filename}: not a CIFAR-10 python archive "
                        f"({error})") from None


_READERS = {"idx": _read_idx_set, "cifar-python": _read_cifar_set}


def read_raw(dataset: str, raw_dir: Path, *,
             seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{"train": (images, labels), "test": (images, labels)} of ``dataset`` from its verified raw
    files: uint8 images (N, H, W) for a grey set, (N, C, H, W) for a colour one; int64 labels.
    ``seed`` matters only for derived sets (the colours of coloured MNIST)."""
    spec = datasets.dataset(dataset)
    read = _READERS[source_of(dataset).raw_format]
    train_images, train_labels, test_images, test_labels = read(raw_dir, dataset)
    expected = spec.image_shape if spec.colour else spec.image_shape[1:]
    parts = {}
    for part, images, labels in (("train", train_images, train_labels),
                                 ("test", test_images, test_labels)):
        images = datasets.derive(dataset, images, seed=seed, part=part)
        if images.shape[1:] != expected or len(labels) != len(images):
            raise DataError(f"{dataset} {part}: images {images.shape} and {len(labels)} labels, "
                            f"expected images (N, {', '.join(map(str, expected))}) and N labels")
        parts[part] = (images, labels.astype(np.int64))
    return parts


def fixed_binarization(gray: np.ndarray, seed: int, stream: int) -> np.ndarray:
    """Bernoulli(gray / 255) with a fixed seed: the stored bits every model is scored on."""
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, stream])))
    return (rng.random(gray.shape) < gray / 255.0).astype(np.uint8)


def save_npz(path: Path, **arrays: np.ndarray) -> None:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    atomic_write_bytes(Path(path), buffer.getvalue())


def split_arrays(dataset: str, raw_dir: Path, *, val_size: int,
                 seed: int) -> dict[str, dict[str, np.ndarray]]:
    """The arrays of each split's npz, in their stored order: ``gray`` (the 8-bit levels:
    (N, H, W) for a grey set, (N, C, H, W) for a colour one), ``labels`` (N,) int64 and, for the
    validation and test splits of a grey set, the fixed ``binary`` bits (N, H, W)."""
    parts = read_raw(dataset, raw_dir, seed=seed)
    train_images, train_labels = parts["train"]
    if not 0 < val_size < len(train_images):
        raise DataError(f"data.val_size must be in (0, {len(train_images)}), got {val_size}")
    cut = len(train_images) - val_size
    splits = {
        "train": (train_images[:cut], train_labels[:cut]),
        "val": (train_images[cut:], train_labels[cut:]),
        "test": parts["test"],
    }
    colour = datasets.dataset(dataset).colour
    arrays = {}
    for stream, (name, (gray, labels)) in enumerate(splits.items()):
        arrays[name] = {"gray": gray, "labels": labels}
        if name != "train" and not colour:  # training bits are drawn afresh each epoch
            arrays[name]["binary"] = fixed_binarization(gray, seed, stream)
    return arrays


def prepare(dataset: str, raw_dir: Path, out_dir: Path, *, val_size: int = 10_000,
            seed: int = 0) -> dict[str, Path]:
    """Split ``dataset`` into train/val/test npz files in ``out_dir`` (see ``split_arrays``).

    Everything is read, checked and computed before the first file is written, and each file is
    written atomically. MNIST's files are byte for byte those of the MNIST-only ``binarize``.
    """
    arrays = split_arrays(dataset, raw_dir, val_size=val_size, seed=seed)
    paths = {}
    for name, split in arrays.items():
        paths[name] = Path(out_dir) / f"{name}.npz"
        save_npz(paths[name], **split)
    return paths


def binarize(raw_dir: Path, out_dir: Path, *, val_size: int = 10_000, seed: int = 0) -> dict[str, Path]:
    """Split MNIST 50k/10k/10k and store grey levels + (for val/test) fixed bits: ``prepare``
    for MNIST, kept for the callers that predate the other datasets."""
    return prepare("mnist", raw_dir, out_dir, val_size=val_size, seed=seed)


# --------------------------------------------------------------------------------------------
# In-memory datasets
# --------------------------------------------------------------------------------------------


@dataclass
class Split:
    """One split in memory: the 8-bit levels, the fixed bits (grey val/test only) and labels.

    ``gray`` holds the levels of every channel, whatever the dataset: one for the grey sets, R, G
    and B for the colour ones (the name predates them)."""

    gray: torch.Tensor  # (N, C, H, W) uint8: (N, 1, 28, 28) for MNIST, (N, 3, 32, 32) for CIFAR-10
    labels: torch.Tensor  # (N,) int64
    binary: torch.Tensor | None = None  # (N, 1, H, W) uint8 in {0, 1}

    def __len__(self) -> int:
        return len(self.labels)

    def images(self, variant: str) -> torch.Tensor:
        """Fixed images as float levels: {0, 1} for ``binarized``, 0..255 for ``grayscale`` and
        ``rgb``, 0..K-1 for ``codes`` (a VQ-VAE's code grids, stored in ``gray``)."""
        if variant in ("grayscale", COLOUR_VARIANT, "codes"):
            return self.gray.float()
        if self.binary is None:
            raise DataError("this split has no fixed binarization (training bits are dynamic)")
        return self.binary.float()

    def subset(self, limit: int | None) -> "Split":
        if limit is None or limit >= len(self):
            return self
        return Split(self.gray[:limit], self.labels[:limit],
                     None if self.binary is None else self.binary[:limit])


def _channels_first(levels: np.ndarray) -> torch.Tensor:
    """Stored levels as (N, C, H, W): grey sets are stored (N, H, W), colour sets (N, C, H, W)."""
    if levels.ndim not in (3, 4):
        raise ValueError(f"images of shape {levels.shape}, expected (N, H, W) or (N, C, H, W)")
    tensor = torch.from_numpy(levels)
    return tensor.unsqueeze(1) if levels.ndim == 3 else tensor


def load_split(path: Path) -> Split:
    """A split written by ``prepare`` (or a model's stage), its images (N, C, H, W)."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"missing {path}: run the prepare stage first")
    try:
        arrays = np.load(path, allow_pickle=False)
        if not isinstance(arrays, np.lib.npyio.NpzFile):
            raise ValueError("an .npy array, not an .npz archive of splits")
        with arrays:
            gray = _channels_first(arrays["gray"])
            binary = _channels_first(arrays["binary"]) if "binary" in arrays else None
            labels = torch.from_numpy(arrays["labels"])
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
        raise DataError(f"{path}: damaged or not a genzoo data split ({error}); delete it and "
                        "rerun the stage that writes it") from None
    return Split(gray=gray, labels=labels, binary=binary)


def levels_of(variant: str) -> int:
    """Number of pixel values a model must predict for a data variant."""
    return {"binarized": 2, "grayscale": 256, COLOUR_VARIANT: 256}[variant]


def epoch_batches(split: Split, *, variant: str, batch_size: int, seed: int, epoch: int,
                  skip: int = 0):
    """Yield (x, y) training batches of one epoch, reproducible from (seed, epoch) alone.

    Binarized data is resampled every epoch (dynamic binarization); grey or RGB levels and
    VQ-VAE codes are used as they are; the order is shuffled. Both come from a generator seeded
    by (seed, epoch), so a run resumed mid-epoch replays the same batches: ``skip`` drops the
    batches already done.
    """
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    order = torch.randperm(len(split), generator=generator)
    if variant == "binarized":
        images = torch.bernoulli(split.gray.float() / 255.0, generator=generator)
    else:
        images = split.gray.float()
    for start in range(skip * batch_size, len(split), batch_size):
        index = order[start:start + batch_size]
        yield images[index], split.labels[index]

