"""Download (folder, file:// and http mirrors, every failure mode), parsing and binarization."""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import json
import shutil
import socket
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from genzoo import data
from genzoo.cli import main
from genzoo.config import validate_params
from genzoo.data import DataError, RAW_FILES, download, load_split
from genzoo.settings import write_settings


@pytest.fixture(autouse=True)
def _no_environment_mirror(monkeypatch):
    """These tests choose their mirrors; $GENZOO_DATA_MIRROR (set in CI) would go first."""
    monkeypatch.delenv(data.MIRROR_ENV, raising=False)


@pytest.fixture
def http_mirror(mirror):
    """An HTTP server on 127.0.0.1 serving the local mirror; yields its base URL."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(mirror))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"  # nothing listens there once the socket is closed


def copy_mirror(mirror: Path, target: Path) -> Path:
    target.mkdir()
    for name in RAW_FILES:
        shutil.copy(mirror / name, target / name)
    return target


def test_download_from_folder_verifies_all_files(tmp_path, mirror):
    paths = download(tmp_path / "raw", [str(mirror)], progress=False)
    assert sorted(p.name for p in paths) == sorted(RAW_FILES)
    assert all((tmp_path / "raw" / name).read_bytes() == (mirror / name).read_bytes() for name in RAW_FILES)


def test_download_over_http_from_local_server(tmp_path, http_mirror):
    download(tmp_path / "raw", [http_mirror], progress=False)
    assert sorted(p.name for p in (tmp_path / "raw").iterdir()) == sorted(RAW_FILES)


def test_download_from_file_url(tmp_path, mirror):
    download(tmp_path / "raw", [mirror.as_uri()], progress=False)
    assert len(list((tmp_path / "raw").iterdir())) == 4


def test_unreachable_mirror_falls_back_to_the_next(tmp_path, mirror):
    download(tmp_path / "raw", [closed_port_url(), str(mirror)], progress=False)
    assert len(list((tmp_path / "raw").iterdir())) == 4


def test_unreachable_mirror_alone_fails_naming_file_and_mirror(tmp_path):
    url = closed_port_url()
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz.*unreachable") as info:
        download(tmp_path / "raw", [url], progress=False)
    assert url in str(info.value) and "\n" not in str(info.value)
    assert not (tmp_path / "raw").exists() or not any((tmp_path / "raw").iterdir())


def test_missing_file_over_http(tmp_path, mirror, http_mirror):
    with pytest.raises(DataError, match="HTTP 404"):
        download(tmp_path / "raw", [http_mirror + "/no-such-folder"], progress=False)


def test_missing_file_in_folder(tmp_path, mirror):
    partial = copy_mirror(mirror, tmp_path / "partial")
    (partial / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte\.gz.*file missing"):
        download(tmp_path / "raw", [str(partial)], progress=False)
    assert not (tmp_path / "raw" / "t10k-labels-idx1-ubyte.gz").exists()


def test_checksum_mismatch_fails_and_leaves_nothing(tmp_path, mirror):
    bad = copy_mirror(mirror, tmp_path / "bad")
    content = bytearray(gzip.decompress((bad / "train-labels-idx1-ubyte.gz").read_bytes()))
    content[100] ^= 1  # one flipped bit in a valid gzip stream
    (bad / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(bytes(content)))
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte\.gz.*checksum mismatch"):
        download(tmp_path / "raw", [str(bad)], progress=False)
    assert not (tmp_path / "raw" / "train-labels-idx1-ubyte.gz").exists()
    assert not list((tmp_path / "raw").glob(".*tmp"))


def test_truncated_gzip_fails(tmp_path, mirror):
    bad = copy_mirror(mirror, tmp_path / "bad")
    payload = (bad / "t10k-images-idx3-ubyte.gz").read_bytes()
    (bad / "t10k-images-idx3-ubyte.gz").write_bytes(payload[: len(payload) // 2])
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte\.gz.*truncated"):
        download(tmp_path / "raw", [str(bad)], progress=False)
    assert not (tmp_path / "raw" / "t10k-images-idx3-ubyte.gz").exists()


def test_corrupt_file_already_on_disk_is_replaced(tmp_path, mirror):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "train-labels-idx1-ubyte.gz").write_bytes(b"junk")
    download(raw, [str(mirror)], progress=False)
    assert (raw / "train-labels-idx1-ubyte.gz").read_bytes() == (mirror / "train-labels-idx1-ubyte.gz").read_bytes()


def test_environment_mirror_goes_first(monkeypatch):
    monkeypatch.setenv(data.MIRROR_ENV, "/local/mnist")
    assert data.resolve_mirrors(["https://a", "/local/mnist"]) == ["/local/mnist", "https://a"]
    monkeypatch.delenv(data.MIRROR_ENV)
    assert data.resolve_mirrors(["https://a"]) == ["https://a"]


def test_cli_error_is_one_line_and_nonzero(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "genzoo", "download", "--quiet", "--out-dir", str(tmp_path / "raw"),
         "--mirror", str(tmp_path / "nowhere")],
        capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("genzoo download: error: could not get")
    assert str(tmp_path / "nowhere") in lines[0]


def test_read_idx_rejects_garbage():
    with pytest.raises(DataError, match="IDX"):
        data.read_idx(b"\x01\x02\x03\x04\x05")


def test_binarize_split_sizes_and_fixed_bits(processed, tmp_path, mirror):
    splits = {name: data.load_split(processed / f"{name}.npz") for name in data.SPLITS}
    assert [len(splits[name]) for name in data.SPLITS] == [50_000, 10_000, 10_000]
    assert splits["train"].binary is None
    for name in ("val", "test"):
        bits = splits[name].binary
        assert set(torch.unique(bits).tolist()) == {0, 1}
        # Bernoulli(gray/255): a pixel at 0 is never on, a pixel at 255 always is.
        assert not bits[splits[name].gray == 0].any() and bits[splits[name].gray == 255].all()
    # Rebuilding gives the same bytes: every model is scored on the same bits. Rebuilt as the
    # prepare job does, from its settings file (data/mnist.json: the dataset, seed and split).
    download(tmp_path / "raw", [str(mirror)], progress=False)
    write_settings(validate_params({"seed": 0, "data": {"val_size": 10_000}}), tmp_path / "settings")
    settings = json.loads((tmp_path / "settings/data/mnist.json").read_text())
    assert (settings["dataset"], settings["val_size"]) == ("mnist", 10_000)
    assert main(["prepare", "--settings", str(tmp_path / "settings/data/mnist.json"), "--raw-dir",
                 str(tmp_path / "raw"), "--out-dir", str(tmp_path / "processed")]) == 0
    for name in ("val", "test"):
        with np.load(tmp_path / "processed" / f"{name}.npz") as fresh, \
                np.load(processed / f"{name}.npz") as first:
            assert np.array_equal(fresh["binary"], first["binary"])
            assert np.array_equal(fresh["gray"], first["gray"])


# SHA-256 over each npz member's name and uncompressed .npy bytes, in stored order, of the splits
# the MNIST-only binarize wrote before the other datasets (seed 0, val_size 10,000). The same
# members compress to the same file with the same zlib: DVC sees unchanged outputs.
MNIST_SPLIT_SHA256 = {
    "train": "60643828bc8c9767a648459ce262afd160b54bf1a43783def86559002becfb5b",
    "val": "0ac5e5ecf78c2a999d9328f35a97fc016bc9b6c74b222f7b623c13afad6ab7e6",
    "test": "e0a27c24d59388a781cc656275f414a7ea2f16ae706e4ed0ee8811c2865a05a6",
}


def test_mnist_splits_are_byte_identical_to_the_mnist_only_code(processed):
    for name, expected in MNIST_SPLIT_SHA256.items():
        digest = hashlib.sha256()
        with zipfile.ZipFile(processed / f"{name}.npz") as archive:
            members = archive.namelist()
            for member in members:
                digest.update(member.encode() + archive.read(member))
        assert members == ["gray.npy", "labels.npy"] + (["binary.npy"] if name != "train" else [])
        assert digest.hexdigest() == expected, name
        with np.load(processed / f"{name}.npz") as stored:  # one channel: stored (N, 28, 28)
            assert stored["gray"].shape[1:] == (28, 28)
        assert load_split(processed / f"{name}.npz").gray.shape[1:] == (1, 28, 28)


def test_epoch_batches_are_reproducible_and_resumable(processed):
    split = data.load_split(processed / "val.npz").subset(1000)
    first = list(data.epoch_batches(split, variant="binarized", batch_size=64, seed=3, epoch=2))
    again = list(data.epoch_batches(split, variant="binarized", batch_size=64, seed=3, epoch=2))
    resumed = list(data.epoch_batches(split, variant="binarized", batch_size=64, seed=3, epoch=2, skip=5))
    other_epoch = next(data.epoch_batches(split, variant="binarized", batch_size=64, seed=3, epoch=3))
    assert all(torch.equal(a[0], b[0]) for a, b in zip(first, again))
    assert all(torch.equal(a[0], b[0]) for a, b in zip(first[5:], resumed))
    assert len(resumed) == len(first) - 5
    assert not torch.equal(first[0][0], other_epoch[0])  # fresh bits and order each epoch


@pytest.mark.parametrize("content", [b"garbage\n", b"PK\x03\x04 cut short", b""])
def test_a_damaged_split_is_one_line_naming_the_file(tmp_path, content):
    path = tmp_path / "train.npz"
    path.write_bytes(content)
    with pytest.raises(DataError, match=f"^{path}: damaged or not a genzoo data split .*rerun"):
        load_split(path)


def test_a_split_without_its_arrays_is_refused(tmp_path):
    path = tmp_path / "train.npz"
    np.savez(path, gray=np.zeros((2, 28, 28), dtype=np.uint8))  # no labels
    with pytest.raises(DataError, match="damaged or not a genzoo data split"):
        load_split(path)
