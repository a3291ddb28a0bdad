"""Datasets: the paper constructions by hand, real-data loaders on tiny files written in the
standard formats, the shared options, and errors that name the field or file."""
import gzip
import pickle

import numpy as np
import pytest

from gdbench import data, real_data


def test_paper_constructions_by_hand():
    tp = data.two_point()
    np.testing.assert_array_equal(tp.x, [[1, -1], [-1, -4]])
    np.testing.assert_array_equal(tp.y, [1, -1])
    lb = data.perceptron_lower_bound(n=5)
    np.testing.assert_array_equal(lb.x, [[0.5, -1]] + [[-0.5, -1]] * 4)
    np.testing.assert_array_equal(lb.y, [1, -1, -1, -1, -1])


def test_gaussian_has_the_requested_margin():
    ds = data.gaussian(n=300, d=10, margin=0.2, seed=4)
    assert ds.x.shape == (300, 10) and abs(ds.y.sum()) == 0
    # The generator's direction u is recovered as the max-margin direction only approximately;
    # but a linear SVM must find margin ≥ 0.2 (the data are separable along u with that margin).
    from sklearn.svm import LinearSVC
    w = LinearSVC(C=1e6, fit_intercept=False, max_iter=200000).fit(ds.x, ds.y).coef_[0]
    assert (ds.y * (ds.x @ w) / np.linalg.norm(w)).min() >= 0.2 - 1e-3


def test_margin_2d_has_margin_exactly():
    ds = data.margin_2d(n_pos=20, n_neg=30, margin=0.05, seed=1)
    assert ds.n == 50 and (ds.y * ds.x[:, 1]).min() == pytest.approx(0.05)


def test_dimension_candidates_are_separable_unit_norm():
    for ds in (data.many_easy_one_hard(d=10), data.signed_chain(d=10, seed=3)):
        np.testing.assert_allclose(np.linalg.norm(ds.x, axis=1), 1.0)
    chain = data.signed_chain(d=6, seed=3)
    v = np.arange(6, 0, -1.0)  # v_k decreasing separates the unsigned chain (hand check)
    assert ((chain.y * (chain.x @ v)) > 0).all()
    hard = data.many_easy_one_hard(d=6, eps=0.5, s=0.5)
    assert hard.n == 5 and hard.y[-1] == -1


def test_shared_options_in_order():
    ds = data.gaussian(n=50, d=8, seed=0, standardize=True, project="pca", project_dim=3,
                       unit_max_norm=True, bias=1.0, label_noise=0.1)
    assert ds.x.shape == (50, 4)
    np.testing.assert_allclose(ds.x[:, -1], 1.0)
    assert np.linalg.norm(ds.x[:, :3], axis=1).max() == pytest.approx(1.0)
    clean = data.gaussian(n=50, d=8, seed=0)
    assert (ds.y != clean.y).sum() == 5
    rp = data.gaussian(n=50, d=8, seed=0, project="random", project_dim=5)
    assert rp.x.shape == (50, 5)


def test_sklearn_bundled_datasets():
    dg = real_data.digits(classes=(3, 8), n=100, seed=0)
    assert dg.x.shape == (100, 64) and (dg.y == 1).sum() == 50
    bc = real_data.breast_cancer(standardize=True)
    assert bc.x.shape == (569, 30) and set(np.unique(bc.y)) == {-1.0, 1.0}


def _write_idx(path, array, gz):
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in array.shape)
    raw = header + array.astype(np.uint8).tobytes()
    (gzip.open if gz else open)(str(path) + (".gz" if gz else ""), "wb").write(raw)


@pytest.mark.parametrize("loader", [real_data.mnist, real_data.fashion_mnist])
@pytest.mark.parametrize("gz", [False, True])
def test_idx_loaders_on_tiny_files(tmp_path, loader, gz):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (40, 28, 28))
    labels = np.arange(40) % 4
    _write_idx(tmp_path / "train-images-idx3-ubyte", images, gz)
    _write_idx(tmp_path / "train-labels-idx1-ubyte", labels, gz)
    ds = loader(root=str(tmp_path), classes=(1, 2), n=10, seed=0)
    assert ds.x.shape == (10, 784) and ds.x.max() <= 1.0
    i = np.flatnonzero(labels == 1)
    # every +1 row is one of the class-1 images, scaled by 1/255
    assert all(any(np.allclose(row, images[j].ravel() / 255) for j in i) for row in ds.x[ds.y == 1])
    with pytest.raises(ValueError, match="data.n=30"):
        loader(root=str(tmp_path), classes=(1, 2), n=30)
    with pytest.raises(ValueError, match="t10k-images-idx3-ubyte"):
        loader(root=str(tmp_path), classes=(1, 2), n=4, split="test")


def test_idx_header_body_mismatch(tmp_path):
    _write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((4, 2, 2)), False)
    with open(tmp_path / "train-images-idx3-ubyte", "ab") as f:
        f.write(b"\0")
    _write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(4), False)
    with pytest.raises(ValueError, match="header says shape"):
        real_data.mnist(root=str(tmp_path), n=2)


def test_cifar10_on_tiny_batches(tmp_path):
    base = tmp_path / "cifar-10-batches-py"
    base.mkdir()
    rng = np.random.default_rng(0)
    for i in range(1, 6):
        batch = {b"data": rng.integers(0, 256, (10, 3072)).astype(np.uint8), b"labels": list(range(10))}
        pickle.dump(batch, open(base / f"data_batch_{i}", "wb"))
    ds = real_data.cifar10(root=str(tmp_path), classes=(3, 5), n=8, seed=0)
    assert ds.x.shape == (8, 3072) and (ds.y == 1).sum() == 4
    (base / "data_batch_5").unlink()
    with pytest.raises(ValueError, match="data_batch_5"):
        real_data.cifar10(root=str(tmp_path), n=8)


def test_npz_errors_name_the_file(tmp_path):
    f = tmp_path / "d.npz"
    np.savez(f, x=np.ones((4, 2)), y=np.array([0, 1, 0, 1]))
    ds = real_data.npz(path=str(f))
    np.testing.assert_array_equal(ds.y, [-1, 1, -1, 1])
    with pytest.raises(ValueError, match="no such file"):
        real_data.npz(path=str(tmp_path / "missing.npz"))
    with pytest.raises(ValueError, match="no array 'features'"):
        real_data.npz(path=str(f), x_key="features")
    np.savez(f, x=np.ones((4, 2)), y=np.array([0, 1, 0]))
    with pytest.raises(ValueError, match="d.npz"):
        real_data.npz(path=str(f))
    np.savez(f, x=np.array([[np.nan, 1.0], [1.0, 1.0]]), y=np.array([1, -1]))
    with pytest.raises(ValueError, match="NaN or Inf"):
        real_data.npz(path=str(f))
    np.savez(f, x=np.ones((2, 2)), y=np.array([1, 2]))
    with pytest.raises(ValueError, match="labels must be in"):
        real_data.npz(path=str(f))


@pytest.mark.parametrize("call, match", [
    (lambda: data.gaussian(n=1), "data.n=1"), (lambda: data.gaussian(d=0), "data.d=0"),
    (lambda: real_data.digits(n=10000), "data.n=10000"), (lambda: real_data.digits(classes=(1, 1)), "two distinct"),
    (lambda: data.gaussian(project="svd", project_dim=2), "data.project='svd'"),
    (lambda: data.gaussian(project="pca"), "data.project_dim=None"),
    (lambda: data.gaussian(label_noise=2.0), "data.label_noise=2.0")])
def test_bad_dataset_options(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_lifted_lower_bound_by_hand():
    # The definition at d = 5: x_0 = 0.5 e_0 − e_1 (+1); x_i = −0.5 e_0 − e_1 + e_{i+1} (−1).
    ds = data.lifted_lower_bound(d=5)
    np.testing.assert_array_equal(ds.x, [[0.5, -1, 0, 0, 0], [-0.5, -1, 1, 0, 0], [-0.5, -1, 0, 1, 0],
                                         [-0.5, -1, 0, 0, 1]])
    np.testing.assert_array_equal(ds.y, [1, -1, -1, -1, -1][:4])
    # separable through the origin: w = (1, 0, −1, −1, −1) gives margins 0.5, 1.5, 1.5, 1.5 (by hand)
    w = np.array([1.0, 0, -1, -1, -1])
    np.testing.assert_allclose(ds.y * (ds.x @ w), [0.5, 1.5, 1.5, 1.5])


def test_batch_perceptron_needs_order_d_steps_on_the_lifted_family():
    # An independent loop (numpy, the batch perceptron w += Σ_{misclassified} y_i x_i from 0):
    # the steps to separate grow linearly in d (Θ(d) for a linear model, as the family intends).
    def steps(d):
        ds, w = data.lifted_lower_bound(d=d), np.zeros(d)
        for t in range(10 * d):
            wrong = ds.y * (ds.x @ w) <= 0
            if not wrong.any():
                return t
            w += (ds.y[wrong, None] * ds.x[wrong]).sum(0)
    counts = [steps(d) for d in (16, 32, 64, 128)]
    slope = np.polyfit(np.log([16, 32, 64, 128]), np.log(counts), 1)[0]
    assert 0.85 <= slope <= 1.15, counts


def test_custom_family_calls_the_users_function(tmp_path, monkeypatch):
    (tmp_path / "fams.py").write_text(
        "import numpy as np\n"
        "def chain(d=4, scale=1.0, seed=0):\n"
        "    x = scale * np.eye(d)\n"
        "    return x, np.where(np.arange(d) % 2 == 0, 1.0, -1.0)\n")
    monkeypatch.chdir(tmp_path)
    ds = data.custom(fn="fams:chain", d=3, scale=2.0, standardize=False)
    assert ds.name == "chain" and ds.x.shape == (3, 3) and ds.x[0, 0] == 2.0
    by_file = data.custom(fn=str(tmp_path / "fams.py") + ":chain", d=3, unit_max_norm=True)
    assert by_file.x[0, 0] == 1.0  # the shared options apply
    with pytest.raises(ValueError, match=r"data\.width: fams:chain has no parameter 'width'"):
        data.custom(fn="fams:chain", width=3)
    with pytest.raises(ValueError, match=r"data\.fn='nosuchmodule:f': cannot import"):
        data.custom(fn="nosuchmodule:f")
    with pytest.raises(ValueError, match=r"has no function 'missing'"):
        data.custom(fn="fams:missing")


def test_readme_example_family_runs_through_custom():
    # docs/examples/families.py is what the README's data=custom command uses
    from conftest import ROOT
    ds = data.custom(fn=str(ROOT / "docs" / "examples" / "families.py") + ":tilted_pair", d=8, tilt=0.1, seed=2)
    assert ds.name == "tilted_pair" and ds.x.shape == (40, 8)
    assert (ds.y * ds.x[:, 0]).min() >= 0.1  # separable along e_0 with margin ≥ tilt (its definition)


def test_file_and_label_mistakes_are_named(tmp_path):
    # an .npz that is not a zip archive, a bare .npy, and data of one class: one message each
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"this is not a zip archive")
    with pytest.raises(ValueError, match=r"bad.npz'?: not an .npz archive"):
        real_data.npz(path=str(bad))
    arr = tmp_path / "one.npz"
    with open(arr, "wb") as f:
        np.save(f, np.zeros((3, 2)))
    with pytest.raises(ValueError, match="a single .npy array"):
        real_data.npz(path=str(arr))
    one = tmp_path / "oneclass.npz"
    np.savez(one, x=np.eye(3), y=np.ones(3))
    with pytest.raises(ValueError, match=r"every label is \+1"):
        real_data.npz(path=str(one))
