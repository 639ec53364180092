"""MNIST: mirrors, checksum verification, IDX parsing, binarization, in-memory datasets.

The raw files come from an ordered list of mirrors (local folders, ``file://`` or ``http(s)://``
URLs). Each file's *decompressed* content must match the official MD5; anything else (unreachable
mirror, missing file, truncated gzip, checksum mismatch) moves on to the next mirror and, when no
mirror is left, fails with one line naming the file and every mirror tried.

Binarized MNIST follows DESIGN.md: train = the first 50,000 training images, validation = the last
10,000 (``val_size``), test = the 10,000 test images. Training batches are binarized afresh every
epoch (Bernoulli(pixel / 255)); validation and test are binarized once with a fixed seed and
stored, so every model is scored on the same bits.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import struct
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

MIRROR_ENV = "GENZOO_DATA_MIRROR"

# Official MD5 sums of the *decompressed* IDX files.
MNIST_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
RAW_FILES = tuple(f"{name}.gz" for name in MNIST_MD5)
SPLITS = ("train", "val", "test")


class DataError(RuntimeError):
    """A data problem the user must fix (bad mirror, corrupt file, missing split)."""


# --------------------------------------------------------------------------------------------
# Download
# --------------------------------------------------------------------------------------------


def resolve_mirrors(mirrors: list[str]) -> list[str]:
    """The mirrors to try, in order: ``$GENZOO_DATA_MIRROR`` first when it is set."""
    extra = os.environ.get(MIRROR_ENV, "").strip()
    ordered = ([extra] if extra else []) + list(mirrors)
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


def _check(filename: str, payload: bytes) -> None:
    """Raise if the gzip is truncated/corrupt or its content has the wrong MD5."""
    stem = filename.removesuffix(".gz")
    try:
        content = gzip.decompress(payload)
    except (EOFError, gzip.BadGzipFile, OSError, zlib.error) as error:  # zlib: a damaged stream
        raise DataError(f"truncated or corrupt gzip ({error})") from None
    digest = hashlib.md5(content).hexdigest()
    if digest != MNIST_MD5[stem]:
        raise DataError(f"checksum mismatch: MD5 {digest}, expected {MNIST_MD5[stem]}")


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


def download(out_dir: Path, mirrors: list[str], *, progress: bool = True) -> list[Path]:
    """Fetch the four MNIST files into ``out_dir``, verifying each against its official MD5.

    Files already present with the right checksum are kept. Raises DataError naming the file and
    every mirror tried when no mirror serves a good copy; nothing partial is left behind.
    """
    out_dir = Path(out_dir)
    mirrors = resolve_mirrors(mirrors)
    if not mirrors:
        raise DataError("no MNIST mirror configured (data.mirrors is empty and $GENZOO_DATA_MIRROR unset)")
    written = []
    for filename in RAW_FILES:
        target = out_dir / filename
        if target.exists():
            try:
                _check(filename, target.read_bytes())
                written.append(target)
                continue
            except DataError:
                target.unlink()
        failures = []
        for mirror in mirrors:
            try:
                payload = _read_from_mirror(mirror, filename, progress)
                _check(filename, payload)
            except (DataError, OSError, urllib.error.URLError, ValueError) as error:
                failures.append(f"{mirror} ({_describe(error)})")
                continue
            atomic_write_bytes(target, payload)
            written.append(target)
            break
        else:
            raise DataError(f"could not get {filename}; tried: " + "; ".join(failures))
    return written


# --------------------------------------------------------------------------------------------
# IDX parsing and binarization
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


def _read_raw(raw_dir: Path, stem: str) -> np.ndarray:
    path = Path(raw_dir) / f"{stem}.gz"
    if not path.exists():
        raise DataError(f"missing {path}: run the download stage first")
    payload = path.read_bytes()
    try:
        _check(path.name, payload)
    except DataError as error:
        raise DataError(f"{path}: {error}") from None
    return read_idx(gzip.decompress(payload))


def fixed_binarization(gray: np.ndarray, seed: int, stream: int) -> np.ndarray:
    """Bernoulli(gray / 255) with a fixed seed: the stored bits every model is scored on."""
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, stream])))
    return (rng.random(gray.shape) < gray / 255.0).astype(np.uint8)


def save_npz(path: Path, **arrays: np.ndarray) -> None:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    atomic_write_bytes(Path(path), buffer.getvalue())


def binarize(raw_dir: Path, out_dir: Path, *, val_size: int = 10_000, seed: int = 0) -> dict[str, Path]:
    """Split MNIST 50k/10k/10k and store grayscale + (for val/test) fixed binary images as npz."""
    train_images = _read_raw(raw_dir, "train-images-idx3-ubyte")  # (60000, 28, 28) uint8
    train_labels = _read_raw(raw_dir, "train-labels-idx1-ubyte")
    test_images = _read_raw(raw_dir, "t10k-images-idx3-ubyte")
    test_labels = _read_raw(raw_dir, "t10k-labels-idx1-ubyte")
    if not 0 < val_size < len(train_images):
        raise DataError(f"data.val_size must be in (0, {len(train_images)}), got {val_size}")
    cut = len(train_images) - val_size
    splits = {
        "train": (train_images[:cut], train_labels[:cut]),
        "val": (train_images[cut:], train_labels[cut:]),
        "test": (test_images, test_labels),
    }
    out_dir = Path(out_dir)
    paths = {}
    for stream, (name, (gray, labels)) in enumerate(splits.items()):
        arrays = {"gray": gray, "labels": labels.astype(np.int64)}
        if name != "train":  # training bits are drawn afresh each epoch
            arrays["binary"] = fixed_binarization(gray, seed, stream)
        paths[name] = out_dir / f"{name}.npz"
        save_npz(paths[name], **arrays)
    return paths


# --------------------------------------------------------------------------------------------
# In-memory datasets
# --------------------------------------------------------------------------------------------


@dataclass
class Split:
    """One split in memory: grayscale levels, the fixed bits (val/test only) and labels."""

    gray: torch.Tensor  # (N, 1, 28, 28) uint8
    labels: torch.Tensor  # (N,) int64
    binary: torch.Tensor | None = None  # (N, 1, 28, 28) uint8 in {0, 1}

    def __len__(self) -> int:
        return len(self.labels)

    def images(self, variant: str) -> torch.Tensor:
        """Fixed images as float levels: {0, 1} for ``binarized``, 0..255 for ``grayscale``,
        0..K-1 for ``codes`` (a VQ-VAE's code grids, stored in ``gray``)."""
        if variant in ("grayscale", "codes"):
            return self.gray.float()
        if self.binary is None:
            raise DataError("this split has no fixed binarization (training bits are dynamic)")
        return self.binary.float()

    def subset(self, limit: int | None) -> "Split":
        if limit is None or limit >= len(self):
            return self
        return Split(self.gray[:limit], self.labels[:limit],
                     None if self.binary is None else self.binary[:limit])


def load_split(path: Path) -> Split:
    path = Path(path)
    if not path.exists():
        raise DataError(f"missing {path}: run the binarize stage first")
    try:
        arrays = np.load(path, allow_pickle=False)
        if not isinstance(arrays, np.lib.npyio.NpzFile):
            raise ValueError("an .npy array, not an .npz archive of splits")
        with arrays:
            gray = torch.from_numpy(arrays["gray"]).unsqueeze(1)
            binary = (torch.from_numpy(arrays["binary"]).unsqueeze(1) if "binary" in arrays
                      else None)
            labels = torch.from_numpy(arrays["labels"])
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
        raise DataError(f"{path}: damaged or not a genzoo data split ({error}); delete it and "
                        "rerun the stage that writes it") from None
    return Split(gray=gray, labels=labels, binary=binary)


def levels_of(variant: str) -> int:
    """Number of pixel values a model must predict for a data variant."""
    return {"binarized": 2, "grayscale": 256}[variant]


def epoch_batches(split: Split, *, variant: str, batch_size: int, seed: int, epoch: int,
                  skip: int = 0):
    """Yield (x, y) training batches of one epoch, reproducible from (seed, epoch) alone.

    Binarized data is resampled every epoch (dynamic binarization); grayscale levels and VQ-VAE
    codes are used as they are; the order is shuffled. Both
    come from a generator seeded by (seed, epoch), so a run resumed mid-epoch replays the same
    batches: ``skip`` drops the batches already done.
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

