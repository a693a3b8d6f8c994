"""pytest-benchmark suites for uftpcore (both implementations), against a server process.

    .venv/bin/python -m pytest benchmarks/test_bench_uftpcore.py --benchmark-only

These complement ``benchmarks/run.py`` (which adds the raw-TCP and curl references and
prints ratios); they are not part of the test suite.
"""

from __future__ import annotations

import os
import random
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import ServerProcess, make_file  # noqa: E402

import uftpcore  # noqa: E402
from uftpcore._impl import available_implementations  # noqa: E402

SIZE = int(os.environ.get("UFTPCORE_BENCH_SIZE", 256 << 20))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench-remote")
    make_file(str(root / "data.bin"), SIZE)
    with ServerProcess(str(root)) as srv:
        srv.root_path = str(root)
        yield srv


@pytest.fixture(params=available_implementations())
def session(request, server):
    s = uftpcore.connect("127.0.0.1", server.port, server.job(server.root_path), implementation=request.param)
    yield s
    s.close()


def test_download_to_memory(benchmark, session):
    buf = np.empty(SIZE, dtype=np.uint8)
    benchmark.extra_info["bytes"] = SIZE
    assert benchmark(session.read_into, "data.bin", buf) == SIZE


def test_download_to_file(benchmark, session, tmp_path):
    benchmark.extra_info["bytes"] = SIZE
    assert benchmark(session.download, "data.bin", tmp_path / "out.bin") == SIZE


def test_upload_from_file(benchmark, session, server):
    benchmark.extra_info["bytes"] = SIZE
    src = os.path.join(server.root_path, "data.bin")
    assert benchmark(session.upload, src, "up.bin") == SIZE


def test_mlst_round_trip(benchmark, session):
    info = benchmark(session.stat, "data.bin")
    assert info.size == SIZE


def test_random_4k_range_reads(benchmark, session):
    rng = random.Random(1)
    f = session.open("data.bin", "rb", buffering=0)
    buf = bytearray(4096)

    def one():
        f.seek(rng.randrange(0, SIZE - 4096))
        return f.readinto(buf)

    assert benchmark(one) == 4096
    f.close()
