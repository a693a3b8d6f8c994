"""Real consumers reading ``uftp://`` URLs through fsspec: numpy, pandas (CSV, Parquet via pyarrow).

``np.fromfile`` needs an OS file descriptor, which no remote file object has; fsspec's answer is
``open_local("simplecache::...")`` (download once through our ``get``, then a real local file),
tested here too.
"""

from __future__ import annotations

import fsspec
import numpy as np
import pytest

from tests.fsconfig import http_url

pytest_plugins = ("tests.fsfixtures",)  # fixtures: auth

pd = pytest.importorskip("pandas")


def test_numpy_save_and_load(auth, workdir):
    arr = np.arange(300_000, dtype=np.float64).reshape(1000, 300)
    url = http_url(auth, f"{workdir}/arr.npy")
    with fsspec.open(url, "wb") as f:
        np.save(f, arr)
    with fsspec.open(url, "rb") as f:
        back = np.load(f)
    np.testing.assert_array_equal(back, arr)


def test_numpy_npz_random_access(auth, workdir):
    url = http_url(auth, f"{workdir}/many.npz")
    arrays = {f"a{i}": np.full(1000 + i, i, dtype=np.int32) for i in range(5)}
    with fsspec.open(url, "wb") as f:
        np.savez(f, **arrays)
    with fsspec.open(url, "rb") as f, np.load(f) as z:  # zip: central directory at the end, then seeks
        assert z["a3"].tolist() == arrays["a3"].tolist()


def test_numpy_fromfile_via_simplecache(auth, workdir, tmp_path):
    data = np.linspace(0, 1, 100_000, dtype=np.float32)
    (workdir / "raw.f32").write_bytes(data.tobytes())
    local = fsspec.open_local("simplecache::" + http_url(auth, f"{workdir}/raw.f32"),
                              simplecache={"cache_storage": str(tmp_path / "cache")})
    np.testing.assert_array_equal(np.fromfile(local, dtype=np.float32), data)


def test_numpy_readinto_array(auth, workdir):
    data = np.random.default_rng(0).standard_normal(500_000)
    (workdir / "raw.f64").write_bytes(data.tobytes())
    out = np.empty_like(data)
    with fsspec.open(http_url(auth, f"{workdir}/raw.f64"), "rb") as f:
        assert f.readinto(out) == data.nbytes
    np.testing.assert_array_equal(out, data)


def test_pandas_csv_roundtrip(auth, workdir):
    df = pd.DataFrame({"a": range(1000), "b": [f"x{i}" for i in range(1000)], "c": np.arange(1000) / 7})
    url = http_url(auth, f"{workdir}/table.csv")
    df.to_csv(url, index=False)
    back = pd.read_csv(url)
    pd.testing.assert_frame_equal(back, df)
    first = pd.read_csv(url, nrows=10)
    assert len(first) == 10


def test_pandas_parquet_roundtrip(auth, workdir):
    pytest.importorskip("pyarrow")
    df = pd.DataFrame({"i": np.arange(50_000), "f": np.random.default_rng(1).random(50_000),
                       "s": [f"row{i % 97}" for i in range(50_000)]})
    url = http_url(auth, f"{workdir}/table.parquet")
    df.to_parquet(url, row_group_size=10_000)
    back = pd.read_parquet(url)
    pd.testing.assert_frame_equal(back, df)
    cols = pd.read_parquet(url, columns=["f"])  # column projection: byte ranges of one column
    assert list(cols.columns) == ["f"]


def test_pyarrow_dataset_through_fsspec_filesystem(auth, workdir):
    pq = pytest.importorskip("pyarrow.parquet")
    fsys, path = fsspec.core.url_to_fs(http_url(auth, f"{workdir}/ds"))
    fsys.mkdir(path)
    pd.DataFrame({"k": [1, 2, 3]}).to_parquet(f"{workdir}/ds/part-0.parquet")
    pd.DataFrame({"k": [4, 5]}).to_parquet(f"{workdir}/ds/part-1.parquet")
    table = pq.read_table(path, filesystem=fsys)
    assert sorted(table.column("k").to_pylist()) == [1, 2, 3, 4, 5]
