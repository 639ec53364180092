"""The datasets genzoo can model: where their raw files come from and how they become images.

Each entry of ``DATASETS`` says which raw files a dataset is made from, their official checksums,
the mirrors that serve them, the shape and classes of its images and whether they are in colour.
``genzoo.data`` downloads, verifies and splits any of them the same way; the dataset-specific
parts live here:

* MNIST (LeCun et al. 1998) and Fashion-MNIST (Xiao, Rasul and Vollgraf 2017, "Fashion-MNIST: a
  Novel Image Dataset for Benchmarking Machine Learning Algorithms", arXiv:1708.07747) are four
  gzipped IDX files each, checked by the MD5 of their *decompressed* content (a mirror may
  recompress them: Debian's ``dataset-fashion-mnist`` package does).
* CIFAR-10 (Krizhevsky 2009, "Learning Multiple Layers of Features from Tiny Images", ch. 3) is
  the official ``cifar-10-python.tar.gz``, checked by the MD5 of the archive itself: six pickled
  batches, read here with an unpickler that can build nothing but numpy arrays.
* Colored MNIST is derived from MNIST's raw files, offline and bit for bit reproducibly from
  the data seed: each digit in one colour on a background of another (``colour_digits``).

Grey sets come in two variants (``binarized`` or ``grayscale``, from params' ``data.variant``);
colour sets always have 256 levels per channel (``rgb``).
"""

from __future__ import annotations

import io
import pickle
import tarfile
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

import numpy as np

GREY_VARIANTS = ("binarized", "grayscale")
COLOUR_VARIANT = "rgb"


@dataclass(frozen=True)
class Dataset:
    """One dataset: its raw files, where to get them and what its images look like.

    Attributes:
        name: the key in ``DATASETS`` (params' ``data.dataset``).
        title: how the report names it.
        citation: the paper (or report) that introduced it.
        raw_files: the files a mirror serves, as they are stored in ``data/raw``.
        checksums: official MD5 of each raw file; of its decompressed content for ``idx`` sets,
            of the file itself for ``cifar-python``.
        raw_format: ``idx`` (four gzipped IDX files) or ``cifar-python`` (one tar.gz of pickles).
        mirrors: default mirrors, in order: folders, ``file://`` or ``http(s)://`` URLs.
        mirror_env: an environment variable naming a local mirror folder to try first.
        image_shape: (C, H, W) of one image.
        class_names: the label names, in label order.
        colour: RGB images (always 256 levels) rather than one grey channel.
        raw_source: the dataset whose raw files this one is built from (itself, or ``mnist``).
    """

    name: str
    title: str
    citation: str
    raw_files: tuple[str, ...]
    checksums: Mapping[str, str] = field(hash=False)  # a mapping: leave it out of the hash
    raw_format: str
    mirrors: tuple[str, ...]
    mirror_env: str
    image_shape: tuple[int, int, int]
    class_names: tuple[str, ...]
    colour: bool
    raw_source: str

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def variants(self) -> tuple[str, ...]:
        """The data variants a model can be trained on for this dataset."""
        return (COLOUR_VARIANT,) if self.colour else GREY_VARIANTS


IDX_STEMS = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
IDX_FILES = tuple(f"{stem}.gz" for stem in IDX_STEMS)


def _frozen(mapping: dict[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(mapping))


MNIST = Dataset(
    name="mnist",
    title="MNIST",
    citation="LeCun, Bottou, Bengio and Haffner 1998",
    raw_files=IDX_FILES,
    checksums=_frozen({  # MD5 of the decompressed files, as published with the dataset
        "train-images-idx3-ubyte.gz": "6bbc9ace898e44ae57da46a324031adb",
        "train-labels-idx1-ubyte.gz": "a25bea736e30d166cdddb491f175f624",
        "t10k-images-idx3-ubyte.gz": "2646ac647ad5339dbf082846283269ea",
        "t10k-labels-idx1-ubyte.gz": "27ae3e4e09519cfbb04c329615203637",
    }),
    raw_format="idx",
    mirrors=("https://ossci-datasets.s3.amazonaws.com/mnist",
             "https://storage.googleapis.com/cvdf-datasets/mnist"),
    mirror_env="GENZOO_DATA_MIRROR",  # the name CI and the tests already use
    image_shape=(1, 28, 28),
    class_names=tuple(str(digit) for digit in range(10)),
    colour=False,
    raw_source="mnist",
)

FASHION_MNIST = Dataset(
    name="fashion_mnist",
    title="Fashion-MNIST",
    citation="Xiao, Rasul and Vollgraf 2017 (arXiv:1708.07747)",
    raw_files=IDX_FILES,  # same names and format as MNIST: a drop-in replacement by design
    # MD5 of the decompressed files. Zalando's README publishes the MD5 of the .gz files
    # (8d4fb7e6..., 25c81989..., bef4ecab..., bb300cfd...); Debian recompresses them, so the
    # content is what every good copy shares.
    checksums=_frozen({
        "train-images-idx3-ubyte.gz": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
        "train-labels-idx1-ubyte.gz": "9018921c3c673c538a1fc5bad174d6f9",
        "t10k-images-idx3-ubyte.gz": "8181f5470baa50b63fa0f6fddb340f0a",
        "t10k-labels-idx1-ubyte.gz": "15d484375f8d13e6eb1aabb0c3f46965",
    }),
    raw_format="idx",
    mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com",
             "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion"),
    mirror_env="GENZOO_FASHION_MNIST_MIRROR",
    image_shape=(1, 28, 28),
    class_names=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                 "Sneaker", "Bag", "Ankle boot"),
    colour=False,
    raw_source="fashion_mnist",
)

COLORED_MNIST = Dataset(
    name="colored_mnist",
    title="Colored MNIST",
    citation="derived from MNIST (LeCun et al. 1998) by genzoo: coloured digit on a coloured background",
    raw_files=MNIST.raw_files,
    checksums=MNIST.checksums,
    raw_format=MNIST.raw_format,
    mirrors=MNIST.mirrors,
    mirror_env=MNIST.mirror_env,
    image_shape=(3, 28, 28),
    class_names=MNIST.class_names,
    colour=True,
    raw_source="mnist",
)

CIFAR10_ARCHIVE = "cifar-10-python.tar.gz"

CIFAR10 = Dataset(
    name="cifar10",
    title="CIFAR-10",
    citation="Krizhevsky 2009, Learning Multiple Layers of Features from Tiny Images",
    raw_files=(CIFAR10_ARCHIVE,),
    checksums=_frozen({CIFAR10_ARCHIVE: "c58f30108f718f92721af3b95e74349a"}),  # of the archive
    raw_format="cifar-python",
    mirrors=("https://www.cs.toronto.edu/~kriz",),
    mirror_env="GENZOO_CIFAR10_MIRROR",
    image_shape=(3, 32, 32),
    class_names=("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                 "truck"),
    colour=True,
    raw_source="cifar10",
)

# A plain dict: tests swap an entry (monkeypatch.setitem) to read a small fixture archive.
DATASETS: dict[str, Dataset] = {spec.name: spec for spec in (MNIST, FASHION_MNIST, COLORED_MNIST,
                                                             CIFAR10)}


# The dataset of every file written before there were several: settings, metrics, histories.
DEFAULT_DATASET = "mnist"


def dataset_of(record: dict) -> str:
    """The dataset a job's settings or a run's record (metrics, history) names; mnist for one
    written before the datasets, which names none."""
    return record.get("dataset", DEFAULT_DATASET)


def dataset(name: str) -> Dataset:
    """The registry entry called ``name``; a ValueError naming the known ones otherwise."""
    try:
        return DATASETS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown dataset {name!r} (known: {', '.join(DATASETS)})") from None


def source_of(name: str) -> Dataset:
    """The dataset whose raw files ``name`` is built from (itself for all but derived sets)."""
    return dataset(dataset(name).raw_source)


def variant_of(name: str, variant: str) -> str:
    """The variant models see: ``variant`` (params' ``data.variant``) for a grey dataset,
    always ``rgb`` for a colour one."""
    spec = dataset(name)
    if spec.colour:
        return COLOUR_VARIANT
    if variant not in GREY_VARIANTS:
        raise ValueError(f"data.variant must be one of {', '.join(GREY_VARIANTS)} for {name}, "
                         f"got {variant!r}")
    return variant


# --------------------------------------------------------------------------------------------
# CIFAR-10: the official python archive, read without running arbitrary pickled code
# --------------------------------------------------------------------------------------------

CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_TRAIN_BATCHES = tuple(f"data_batch_{index}" for index in range(1, 6))
CIFAR10_TEST_BATCH = "test_batch"

# ndarray.__reduce__ names the function that rebuilds an array: numpy.core.multiarray._reconstruct
# in the official (numpy 1.x) pickles, numpy._core.multiarray._reconstruct in numpy 2's.
_RECONSTRUCT = np.empty(0).__reduce__()[0]
_PICKLE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class ArrayUnpickler(pickle.Unpickler):
    """An unpickler for dicts, lists, bytes, numbers and numpy arrays, and nothing else.

    A pickle can call any function it names (``os.system`` included); this one refuses every
    global but the three that rebuild a numpy array, which is all the CIFAR-10 batches need.
    """

    def find_class(self, module: str, name: str):
        try:
            return _PICKLE_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a pickle "
                                         "(only numpy arrays are allowed)") from None


def load_pickle(payload: bytes):
    """Unpickle ``payload`` with ``ArrayUnpickler``; Python 2 strings come back as bytes."""
    return ArrayUnpickler(io.BytesIO(payload), encoding="bytes").load()


def _cifar10_batch(archive: tarfile.TarFile, member: str) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 3, 32, 32) uint8 and labels (N,) of one pickled batch."""
    handle = archive.extractfile(f"{CIFAR10_FOLDER}/{member}")
    if handle is None:
        raise ValueError(f"{member} is not a regular file")
    batch = load_pickle(handle.read())
    if not isinstance(batch, dict):
        raise ValueError(f"{member} holds a {type(batch).__name__}, not a dict")
    rows = np.asarray(batch[b"data"])  # (N, 3072): 1024 red values, then green, then blue
    labels = np.asarray(batch[b"labels"], dtype=np.int64)  # (N,)
    if rows.dtype != np.uint8 or rows.ndim != 2 or rows.shape[1] != 3 * 32 * 32:
        raise ValueError(f"{member}: data is {rows.dtype} {rows.shape}, expected uint8 (N, 3072)")
    if labels.shape != (len(rows),):
        raise ValueError(f"{member}: {len(labels)} labels for {len(rows)} images")
    return rows.reshape(-1, 3, 32, 32), labels


def read_cifar10(payload: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Train images (50000, 3, 32, 32), train labels, test images, test labels of the archive.

    Raises ValueError, ``tarfile.TarError``, ``KeyError`` (a missing member or key) or
    ``pickle.UnpicklingError`` on anything that is not a CIFAR-10 python archive.
    """
    with tarfile.open(fileobj=io.BytesIO(payload), mode="r:gz") as archive:
        train = [_cifar10_batch(archive, member) for member in CIFAR10_TRAIN_BATCHES]
        test_images, test_labels = _cifar10_batch(archive, CIFAR10_TEST_BATCH)
    train_images = np.concatenate([images for images, _ in train])  # (50000, 3, 32, 32)
    train_labels = np.concatenate([labels for _, labels in train])
    return train_images, train_labels, test_images, test_labels


# --------------------------------------------------------------------------------------------
# Colored MNIST: a coloured digit on a background of another colour
# --------------------------------------------------------------------------------------------

# Hue families: offsets from grey (each sums to zero, so it moves the hue, not the lightness).
HUE_TINTS = np.array([
    [40, -20, -20],  # red
    [20, 20, -40],   # yellow
    [-20, 40, -20],  # green
    [-40, 20, 20],   # cyan
    [-20, -20, 40],  # blue
    [20, -40, 20],   # magenta
], dtype=np.int64)
DARK = (48, 88)  # lightness range [low, high) of the darker of the two colours
LIGHT = (168, 208)  # and of the lighter one
JITTER = 8  # per-channel jitter in [-JITTER, JITTER]
# Channel values stay in [48 - 40 - 8, 207 + 40 + 8] = [0, 255]: no clipping, every value exact.
# The digit's and the background's lightness differ by at least LIGHT[0] - (DARK[1] - 1) = 81;
# the channel mean of the two colours at least 81 - 2 * JITTER = 65 levels apart.
# Seed streams of the colours; 0-4 are taken (the fixed bits of train/val/test, the VQ-VAE's
# and the autoencoder's codes).
COLOUR_STREAMS = {"train": 10, "test": 11}


def _draws(seed: int, stream: int, count: int, sizes: tuple[int, ...]) -> np.ndarray:
    """(count, len(sizes)) integers, column j uniform in [0, sizes[j]), from the seed alone.

    Built from PCG64's raw 64-bit words, whose stream numpy keeps fixed across versions (unlike
    ``Generator`` methods, NEP 19), with integer arithmetic only: the same uint8 images on any
    machine. ``(w >> 32) * n >> 32`` maps a 32-bit word to [0, n) with a bias below n / 2**32.
    """
    bits = np.random.PCG64(np.random.SeedSequence([seed, stream]))
    words = bits.random_raw(count * len(sizes)).reshape(count, len(sizes)) >> np.uint64(32)
    return ((words * np.array(sizes, dtype=np.uint64)) >> np.uint64(32)).astype(np.int64)


def digit_colours(count: int, *, seed: int, stream: int) -> tuple[np.ndarray, np.ndarray]:
    """Foreground and background colours, each (count, 3) int64 in [0, 255].

    The two colours come from different hue families; one is dark and one light (the digit is
    the light one half the time). Channels move together (a colour is lightness + a hue tint +
    small jitter), so R, G and B are strongly correlated, and the digit always stands out.
    """
    families = len(HUE_TINTS)
    jitter = 2 * JITTER + 1
    draws = _draws(seed, stream, count, (families, families - 1, 2, DARK[1] - DARK[0],
                                         LIGHT[1] - LIGHT[0], *[jitter] * 6))
    fg_hue = draws[:, 0]
    bg_hue = (fg_hue + 1 + draws[:, 1]) % families  # never the digit's family
    light_digit = draws[:, 2:3].astype(bool)  # (count, 1)
    dark = DARK[0] + draws[:, 3:4]
    light = LIGHT[0] + draws[:, 4:5]
    fg = np.where(light_digit, light, dark) + HUE_TINTS[fg_hue] + draws[:, 5:8] - JITTER
    bg = np.where(light_digit, dark, light) + HUE_TINTS[bg_hue] + draws[:, 8:11] - JITTER
    return fg, bg  # (count, 3) each


def colour_digits(gray: np.ndarray, *, seed: int, stream: int, chunk: int = 4096) -> np.ndarray:
    """(N, 28, 28) grey digits -> (N, 3, 28, 28) uint8: each pixel mixes the background (level 0)
    and the digit's colour (level 255) in proportion to its grey level, rounded to nearest.

    The mix is exact in uint16: bg * (255 - g) + fg * g <= 255 * 255, and + 127 still fits.
    """
    fg, bg = (colours.astype(np.uint16)[:, :, None, None]  # (N, 3, 1, 1)
              for colours in digit_colours(len(gray), seed=seed, stream=stream))
    out = np.empty((len(gray), 3, *gray.shape[1:]), dtype=np.uint8)
    for start in range(0, len(gray), chunk):  # in chunks: the uint16 mix of 60,000 is 280 MB
        part = slice(start, start + chunk)
        level = gray[part, None].astype(np.uint16)  # (n, 1, H, W)
        mixed = bg[part] * (255 - level) + fg[part] * level  # (n, 3, H, W)
        out[part] = (mixed + 127) // 255
    return out


def _coloured_mnist(gray: np.ndarray, *, seed: int, part: str) -> np.ndarray:
    return colour_digits(gray, seed=seed, stream=COLOUR_STREAMS[part])


# How each derived dataset is made from the images of its raw source.
RECIPES = {"colored_mnist": _coloured_mnist}


def derive(name: str, images: np.ndarray, *, seed: int, part: str) -> np.ndarray:
    """The images of ``name`` made from those of its raw source (``part``: train or test);
    the images themselves when it is its own source."""
    spec = dataset(name)
    if spec.raw_source == spec.name:
        return images
    if name not in RECIPES:
        raise ValueError(f"no recipe to derive {name} from {spec.raw_source}")
    return RECIPES[name](images, seed=seed, part=part)
