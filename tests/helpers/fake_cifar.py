"""A small CIFAR-10 written in the real on-disk format, for tests that must never download.

The real ``cifar-10-batches-py`` files are Python 2 pickles of dicts whose keys (and the
``filenames`` / ``batch_label`` values) are Python 2 ``str`` objects. Unpickled with
``encoding="bytes"`` (the loader on the CIFAR web page) they come back as ``b"data"``,
``b"labels"``, ...; unpickled with ``encoding="latin1"`` (torchvision) as ``"data"``,
``"labels"``, .... A Python 3 pickle of ``bytes`` keys would only give the first view, so
:func:`_dump_py2` writes bytes with the Python 2 ``BINSTRING`` opcodes, which the Python 3
unpickler decodes with whatever ``encoding`` the reader asks for, exactly as for the real files.

``data`` is a ``uint8`` array of shape (N, 3072), one image per row, channel-major (1024 red
values, then 1024 green, then 1024 blue, each row-major over the 32x32 pixels); ``labels`` is a
list of ints in 0..9.
"""

from __future__ import annotations

import hashlib
import io
import pickle
import struct
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

BASE_FOLDER = "cifar-10-batches-py"
ARCHIVE = "cifar-10-python.tar.gz"
TRAIN_FILES = [f"data_batch_{i}" for i in range(1, 6)]
TEST_FILE = "test_batch"
META_FILE = "batches.meta"
LABEL_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


class _Py2StrPickler(pickle._Pickler):  # the pure-Python pickler: its dispatch table can be extended
    """Pickles ``bytes`` as a Python 2 ``str`` (SHORT_BINSTRING / BINSTRING)."""

    dispatch = dict(pickle._Pickler.dispatch)

    def _save_py2_str(self, obj: bytes) -> None:
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = _save_py2_str


def _dump_py2(obj, path: Path) -> None:
    buffer = io.BytesIO()
    _Py2StrPickler(buffer, protocol=2).dump(obj)
    path.write_bytes(buffer.getvalue())


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@dataclass
class FakeCifar:
    """What was written: images in torchvision's layout (N, 32, 32, 3) uint8, labels, checksums."""

    root: Path
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    md5s: dict[str, str]  # file name (batch files, batches.meta, the archive if written) -> md5


def _images(n: int, first_id: int, rng: np.random.Generator) -> np.ndarray:
    """(N, 3072) channel-major rows; pixel 0 of the red and green planes encode a unique image id."""
    rows = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
    ids = np.arange(first_id, first_id + n)
    rows[:, 0] = ids % 256
    rows[:, 1024] = ids // 256
    return rows


def image_ids(images_nchw) -> np.ndarray:
    """The ids :func:`_images` wrote, read back from (N, 3, 32, 32) uint8 images."""
    images = np.asarray(images_nchw).astype(np.int64)
    return images[:, 0, 0, 0] + 256 * images[:, 1, 0, 0]


def write_fake_cifar(root: Path, per_batch: int = 12, test_size: int = 20, seed: int = 0, archive: bool = False) -> FakeCifar:
    """Write ``root/cifar-10-batches-py/`` (5 training batches of ``per_batch`` images, a test batch,
    ``batches.meta``); with ``archive`` pack it as ``root/cifar-10-python.tar.gz`` and remove the
    folder, as a user who only downloaded the archive would have it. Image ids: training images
    0..5*per_batch-1 in batch order, test images from 10000."""
    rng = np.random.default_rng(seed)
    folder = Path(root) / BASE_FOLDER
    folder.mkdir(parents=True)
    train_rows, train_labels = [], []
    for b, name in enumerate(TRAIN_FILES):
        rows = _images(per_batch, b * per_batch, rng)
        labels = [int(v) for v in rng.integers(0, 10, per_batch)]
        _dump_py2(
            {
                b"batch_label": f"training batch {b + 1} of 5".encode(),
                b"labels": labels,
                b"data": rows,
                b"filenames": [f"fake_{b * per_batch + i:05d}.png".encode() for i in range(per_batch)],
            },
            folder / name,
        )
        train_rows.append(rows)
        train_labels += labels
    test_rows = _images(test_size, 10000, rng)
    test_labels = [int(v) for v in rng.integers(0, 10, test_size)]
    _dump_py2(
        {
            b"batch_label": b"testing batch 1 of 1",
            b"labels": test_labels,
            b"data": test_rows,
            b"filenames": [f"fake_test_{i:05d}.png".encode() for i in range(test_size)],
        },
        folder / TEST_FILE,
    )
    _dump_py2(
        {b"num_cases_per_batch": per_batch, b"label_names": [n.encode() for n in LABEL_NAMES], b"num_vis": 3072},
        folder / META_FILE,
    )
    md5s = {name: md5(folder / name) for name in [*TRAIN_FILES, TEST_FILE, META_FILE]}
    if archive:
        with tarfile.open(Path(root) / ARCHIVE, "w:gz") as tar:
            tar.add(folder, arcname=BASE_FOLDER)
        for path in folder.iterdir():
            path.unlink()
        folder.rmdir()
        md5s[ARCHIVE] = md5(Path(root) / ARCHIVE)

    def hwc(rows: list[np.ndarray] | np.ndarray) -> np.ndarray:
        return np.concatenate(rows if isinstance(rows, list) else [rows]).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)

    return FakeCifar(Path(root), hwc(train_rows), np.array(train_labels), hwc(test_rows), np.array(test_labels), md5s)


def forbid_downloads(monkeypatch) -> list[str]:
    """Replace torchvision's download functions (and ``urllib``'s ``urlopen``) by ones that record
    the attempt and fail; returns the list of attempts, which a test can require to stay empty
    even where the package catches the failure."""
    import urllib.request

    import torchvision.datasets.utils as tv_utils

    attempts: list[str] = []

    def recorder(name: str):
        def no_network(*args, **kwargs):
            attempts.append(f"{name}{args!r}")
            raise OSError(f"tests forbid network access ({name})")

        return no_network

    for name in ("_urlretrieve", "_get_redirect_url", "_download_file_from_remote_location", "download_file_from_google_drive"):
        if hasattr(tv_utils, name):
            monkeypatch.setattr(tv_utils, name, recorder(name))
    monkeypatch.setattr(urllib.request, "urlopen", recorder("urlopen"))
    return attempts


def trust_fake_cifar(monkeypatch, fake: FakeCifar) -> list[str]:
    """Make torchvision's unmodified CIFAR10 code accept ``fake`` and forbid any download.

    ``torchvision.datasets.CIFAR10`` verifies every batch file (``_check_integrity``), the metadata
    (``_load_meta``) and, before unpacking, the archive (``download_url``) against md5 sums stored as
    class attributes. Instead of switching the verification off, the test swaps those expected sums
    for the sums of the fake files (pytest's ``monkeypatch`` restores them afterwards), so torchvision's
    own checking, unpacking and unpickling code runs exactly as it does on the real dataset. Downloads
    are forbidden (:func:`forbid_downloads`), so a checksum mismatch can never reach the network.
    """
    from torchvision.datasets import CIFAR10

    monkeypatch.setattr(CIFAR10, "train_list", [[name, fake.md5s[name]] for name in TRAIN_FILES])
    monkeypatch.setattr(CIFAR10, "test_list", [[TEST_FILE, fake.md5s[TEST_FILE]]])
    monkeypatch.setattr(CIFAR10, "meta", {**CIFAR10.meta, "md5": fake.md5s[META_FILE]})
    if ARCHIVE in fake.md5s:
        monkeypatch.setattr(CIFAR10, "tgz_md5", fake.md5s[ARCHIVE])
    return forbid_downloads(monkeypatch)
