"""Real data: scikit-learn's bundled sets and local files (npz, MNIST/Fashion-MNIST IDX, CIFAR-10
python batches), as two-class `Dataset`s with the shared options of `gdbench.data.dataset`.
Nothing is downloaded: a missing file is an error naming data.root or data.path."""
from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import numpy as np

from gdbench.data import _positive_int, dataset


@dataset
def digits(classes: tuple = (0, 1), n: int | None = None, *, seed: int = 0):
    """scikit-learn's bundled 8×8 digits; classes[0] → +1, classes[1] → −1; n samples or all."""
    from sklearn.datasets import load_digits
    x, label = load_digits(return_X_y=True)
    return _two_classes(x, label, classes, n, seed, "digits")


@dataset
def breast_cancer(n: int | None = None, *, seed: int = 0):
    """scikit-learn's bundled Wisconsin breast cancer data; benign → +1, malignant → −1."""
    from sklearn.datasets import load_breast_cancer
    x, label = load_breast_cancer(return_X_y=True)
    return _two_classes(x, label, (1, 0), n, seed, "breast_cancer")


@dataset
def npz(path: str, x_key: str = "x", y_key: str = "y", n: int | None = None, *, seed: int = 0):
    """A local .npz file with an (n, d) array and labels in {−1, +1} (or {0, 1}: 1 → +1)."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise ValueError(f"data.path={str(file)!r}: no such file")
    try:
        archive = np.load(file, allow_pickle=False)
    except (OSError, ValueError) as e:  # numpy's own message would talk about pickles
        raise ValueError(f"data.path={str(file)!r}: not an .npz archive (numpy: {type(e).__name__})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):  # a bare .npy array
        raise ValueError(f"data.path={str(file)!r}: a single .npy array, not an .npz archive with "
                         f"{x_key!r} and {y_key!r}")
    with archive as f:
        for key in (x_key, y_key):
            if key not in f:
                raise ValueError(f"data.path={str(file)!r}: no array {key!r} (has {sorted(f.files)})")
        x, y = f[x_key].astype(np.float64), f[y_key].astype(np.float64).ravel()
    if x.ndim != 2 or len(y) != len(x):
        raise ValueError(f"data.path={str(file)!r}: {x_key!r} must be (n, d) and {y_key!r} (n,); "
                         f"got {x.shape} and {y.shape}")
    if set(np.unique(y)) <= {0.0, 1.0}:
        y = 2 * y - 1
    if not set(np.unique(y)) <= {-1.0, 1.0}:
        raise ValueError(f"data.path={str(file)!r}: labels must be in {{-1, +1}} or {{0, 1}}, "
                         f"found {np.unique(y)[:5].tolist()}")
    if n is None:
        return x, y
    return _two_classes(x, y, (1.0, -1.0), n, seed, str(file))


@dataset
def mnist(root: str = "~/data/mnist", classes: tuple = (0, 1), n: int = 1000, split: str = "train",
          *, seed: int = 0):
    """MNIST in its standard IDX files (train-images-idx3-ubyte[.gz], …) under `root`; pixels / 255."""
    return _two_classes(*_read_idx_pair(root, split), classes, n, seed, str(root))


@dataset
def fashion_mnist(root: str = "~/data/fashion_mnist", classes: tuple = (0, 9), n: int = 1000,
                  split: str = "train", *, seed: int = 0):
    """Fashion-MNIST, same IDX format and file names as MNIST."""
    return _two_classes(*_read_idx_pair(root, split), classes, n, seed, str(root))


@dataset
def cifar10(root: str = "~/data/cifar10", classes: tuple = (3, 5), n: int = 5000, split: str = "train",
            *, seed: int = 0):
    """CIFAR-10 in its python format (cifar-10-batches-py/data_batch_1..5, test_batch), under
    `root` or `root/cifar-10-batches-py`; pixels / 255, flattened to 3072 features."""
    base = Path(root).expanduser()
    if (base / "cifar-10-batches-py").is_dir():
        base = base / "cifar-10-batches-py"
    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    xs, ls = [], []
    for name in names:
        file = base / name
        if not file.is_file():
            raise ValueError(f"data.root={str(root)!r}: missing CIFAR-10 file {str(file)!r}")
        with open(file, "rb") as f:
            batch = pickle.load(f, encoding="bytes")
        x = np.asarray(batch[b"data"], dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != 3072 or len(batch[b"labels"]) != len(x):
            raise ValueError(f"data file {str(file)!r}: expected data (N, 3072) and N labels, got {x.shape}")
        xs.append(x / 255.0)
        ls.append(np.asarray(batch[b"labels"]))
    return _two_classes(np.concatenate(xs), np.concatenate(ls), classes, n, seed, str(root))


def _read_idx_pair(root, split):
    if split not in ("train", "test"):
        raise ValueError(f"data.split={split!r}: expected 'train' or 'test'")
    prefix = "train" if split == "train" else "t10k"
    images = _read_idx(Path(root).expanduser(), f"{prefix}-images-idx3-ubyte")
    labels = _read_idx(Path(root).expanduser(), f"{prefix}-labels-idx1-ubyte")
    if len(images) != len(labels):
        raise ValueError(f"data.root={str(root)!r}: {len(images)} images but {len(labels)} labels")
    return images.reshape(len(images), -1) / 255.0, labels


def _read_idx(root: Path, stem: str) -> np.ndarray:
    """IDX format: 2 zero bytes, a type byte (0x08 = uint8), a dimension count, big-endian sizes."""
    for file in (root / stem, root / (stem + ".gz")):
        if file.is_file():
            raw = (gzip.open if file.suffix == ".gz" else open)(file, "rb").read()
            break
    else:
        raise ValueError(f"data.root={str(root)!r}: missing IDX file {stem!r} (or {stem}.gz)")
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"data file {str(file)!r}: not an unsigned-byte IDX file")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    body = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(shape)):
        raise ValueError(f"data file {str(file)!r}: header says shape {shape}, body has {body.size} bytes")
    return body.reshape(shape)


def _two_classes(x, label, classes, n, seed, source):
    classes = tuple(classes)
    if len(classes) != 2 or classes[0] == classes[1]:
        raise ValueError(f"data.classes={list(classes)!r}: expected two distinct classes")
    pos, neg = np.flatnonzero(label == classes[0]), np.flatnonzero(label == classes[1])
    for c, idx in zip(classes, (pos, neg)):
        if len(idx) == 0:
            raise ValueError(f"data.classes: class {c!r} has no samples in {source}")
    if n is not None:
        _positive_int("data.n", n, 2)
        k_pos = n - n // 2
        if k_pos > len(pos) or n // 2 > len(neg):
            raise ValueError(f"data.n={n}: {source} has only {len(pos)} + {len(neg)} samples of "
                             f"classes {list(classes)} (a balanced subset needs {k_pos} + {n // 2})")
        rng = np.random.default_rng(seed)
        pos, neg = rng.choice(pos, k_pos, replace=False), rng.choice(neg, n // 2, replace=False)
    idx = np.sort(np.concatenate([pos, neg]))
    return x[idx], np.where(label[idx] == classes[0], 1.0, -1.0)
