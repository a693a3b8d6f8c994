"""The FUSE driver's building blocks without a mount: caches, prefetcher, pool, writer, options."""

from __future__ import annotations

import errno
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

import uftpcore
from pyunicore_fast.uftp.fuse_cache import MISSING, BlockCache, MetadataCache
from pyunicore_fast.uftp.fuse_config import (
    FuseDriverConfig,
    kernel_defaults,
    parse_option_string,
    parse_size,
    split_mount_options,
)
from pyunicore_fast.uftp.fuse_pool import ServerUnresponsiveError, SessionPool
from pyunicore_fast.uftp.fuse_prefetch import PrefetchBudget, PrefetchConfig, ReadStream
from pyunicore_fast.uftp.fuse_write import FileWriter, UploadFailedError
from uftpcore.errors import (
    ConnectionClosedError,
    LoginError,
    NotFoundError,
    ReplyError,
    UFTPError,
    UFTPTimeoutError,
)
from uftpcore.listing import FileInfo

from .conftest import new_secret

KiB = 1024
MiB = 1 << 20


# ------------------------------------------------------------------------------- options
def test_option_parsing():
    assert parse_size("128K") == 131072 and parse_size("1.5GiB") == 3 << 29 and parse_size(7) == 7
    with pytest.raises(ValueError):
        parse_size("lots")
    opts = parse_option_string("ro,max_read=131072,cache_size=1G,sessions=4,allow_other")
    driver, kernel = split_mount_options(opts)
    assert driver == {"cache_size": "1G", "max_sessions": "4"}
    assert kernel == {"ro": True, "max_read": "131072", "allow_other": True}
    cfg = FuseDriverConfig.from_options(driver)
    assert cfg.cache_size == 1 << 30 and cfg.max_sessions == 4 and cfg.prefetch_budget == 1 << 29
    assert cfg.dir_ttl == cfg.attr_ttl == cfg.negative_ttl == 5.0
    with pytest.raises(ValueError):
        FuseDriverConfig(block_size=3000)
    k2 = kernel_defaults(cfg, 2, "uftp:h:1")
    assert k2["big_writes"] and k2["max_read"] == MiB and k2["auto_cache"]
    assert "big_writes" not in kernel_defaults(cfg, 3, "uftp:h:1")


def test_errno_mapping():
    from pyunicore_fast.uftp.uftpfuse import errno_for

    assert errno_for(NotFoundError(550, "no such file")) == errno.ENOENT
    assert errno_for(ReplyError(500, "Directory not empty")) == errno.ENOTEMPTY
    assert errno_for(ReplyError(500, "something odd")) == errno.EIO
    assert errno_for(UFTPTimeoutError("slow")) == errno.EIO
    assert errno_for(ConnectionClosedError("gone")) == errno.EIO
    assert errno_for(ValueError("bad name")) == errno.EINVAL
    assert errno_for(RuntimeError("bug")) == errno.EIO


# ------------------------------------------------------------------------------- caches
def _info(name, size=1, is_dir=False):
    return FileInfo(name=name, size=size, mtime=0.0, is_dir=is_dir, mode=0o100644)


def test_metadata_cache_listing_answers_lookups():
    c = MetadataCache(ttl=0.2)
    assert c.lookup("/d/a") is None
    c.put_listing("/d", [_info("a", 3), _info("b", 4)])
    assert c.lookup("/d/a").size == 3 and c.lookup("/d/b").size == 4
    assert c.lookup("/d/zzz") is MISSING  # not in a fresh listing
    assert [e.name for e in c.listing("/d")] == ["a", "b"]
    c.invalidate("/d/a")  # also drops the parent listing
    assert c.lookup("/d/a") is None and c.listing("/d") is None
    c.put_missing("/x")
    assert c.lookup("/x") is MISSING
    time.sleep(0.25)
    assert c.lookup("/x") is None and c.lookup("/d/b") is None
    c.put_listing("/", [_info("top")])
    assert c.lookup("/top").name == "top"
    c.put("/t/a", _info("a"))
    c.put("/t/a/b", _info("b"))
    c.put("/tt", _info("tt"))
    c.invalidate_tree("/t")
    assert c.lookup("/t/a") is None and c.lookup("/t/a/b") is None and c.lookup("/tt") is not None


def test_block_cache_is_bounded_lru():
    c = BlockCache(capacity=10 * KiB)
    for i in range(20):
        c.put("f", i, memoryview(bytes(KiB)))
    assert c.bytes == 10 * KiB and len(c) == 10
    assert c.get("f", 0) is None and c.get("f", 19) is not None
    c.get("f", 10)  # now most recently used
    c.put("g", 0, memoryview(bytes(KiB)))
    assert c.get("f", 10) is not None and c.get("f", 11) is None
    c.invalidate_file("f")
    assert len(c) == 1 and c.bytes == KiB
    c.invalidate_where(lambda fid: fid == "g")
    assert len(c) == 0 and c.bytes == 0


# ------------------------------------------------------------------------------- prefetcher
class FakeFile:
    """A file in memory; records every range fetch."""

    def __init__(self, size, delay=0.0, fail=False):
        import random

        self.data = random.Random(size).randbytes(size)
        self.fetches: list[tuple[int, int]] = []
        self.delay = delay
        self.fail = fail
        self.lock = threading.Lock()

    def fetch(self, path, view, offset):
        if self.delay:
            time.sleep(self.delay)
        if self.fail:
            raise ConnectionClosedError("server gone")
        with self.lock:
            self.fetches.append((offset, len(view)))
        view[:] = self.data[offset:offset + len(view)]


@pytest.fixture
def executor():
    ex = ThreadPoolExecutor(4)
    yield ex
    ex.shutdown(wait=True)


def _stream(f, executor, cache=None, budget=None, **cfg):
    config = PrefetchConfig(**cfg)
    return ReadStream("/f", len(f.data), ("/f", 0), f.fetch, cache or BlockCache(256 * MiB), executor,
                      budget or PrefetchBudget(1 << 30), config)


def test_sequential_reads_prefetch_with_a_doubling_window(executor):
    f = FakeFile(40 * MiB + 1000)
    s = _stream(f, executor)
    out = bytearray()
    buf = bytearray(128 * KiB)
    off = 0
    while True:
        n = s.read_into(memoryview(buf), off)
        if n == 0:
            break
        out += buf[:n]
        off += n
    assert bytes(out) == f.data
    assert s.stats.sync_fetches == 0 and s.stats.resets == 0
    # requests ramp up from 256 KiB (quick first byte) inside a first window of 1 MiB + 128 KiB
    assert f.fetches[0] == (0, 256 * KiB) and f.fetches[1] == (256 * KiB, 512 * KiB)
    assert f.fetches[2][0] == 768 * KiB
    assert sum(n for _, n in f.fetches) == len(f.data)  # nothing fetched twice
    assert max(n for _, n in f.fetches) == 4 * MiB  # requests grew to the request size
    s.close()


def test_latency_bound_links_get_parallel_requests(executor):
    """Every fetch pays a fixed 15 ms (a round trip): the stream learns that from the ramp and
    keeps several requests in flight; without the delay it stays at one."""
    for delay, expect_parallel in ((0.015, True), (0.0, False)):
        f = FakeFile(24 * MiB, delay=delay)
        active = [0, 0]  # now, max
        inner = f.fetch

        def fetch(path, view, offset, inner=inner, f=f, active=active):
            with f.lock:
                active[0] += 1
                active[1] = max(active[1], active[0])
            try:
                inner(path, view, offset)
            finally:
                with f.lock:
                    active[0] -= 1

        s = ReadStream("/f", len(f.data), ("/f", 0), fetch, BlockCache(256 * MiB), executor, PrefetchBudget(1 << 30),
                       PrefetchConfig(max_window=16 * MiB, parallel=4))
        buf = bytearray(128 * KiB)
        off = 0
        while n := s.read_into(memoryview(buf), off):
            assert bytes(buf[:n]) == f.data[off:off + n]
            off += n
        assert (active[1] > 1) == expect_parallel, (delay, active)
        s.close()


def test_random_reads_fetch_single_blocks(executor):
    f = FakeFile(32 * MiB)
    s = _stream(f, executor)
    buf = bytearray(4096)
    import random

    rng = random.Random(3)
    for _ in range(200):
        off = rng.randrange(0, len(f.data) - 4096)
        assert s.read_into(memoryview(buf), off) == 4096
        assert bytes(buf) == f.data[off:off + 4096]
    # one 16 KiB piece per read; only reads that happen to land next to the previous one start a stream
    assert sorted(n for _, n in f.fetches)[len(f.fetches) // 2] == 16 * KiB
    big = [n for _, n in f.fetches if n > 2 * 16 * KiB]
    assert len(big) <= 6 and sum(big) <= 8 * MiB, big
    assert s.stats.resets > 100


def test_small_jumps_keep_the_stream(executor):
    f = FakeFile(64 * MiB)
    s = _stream(f, executor)
    buf = bytearray(128 * KiB)
    off = 0
    for _ in range(40):
        s.read_into(memoryview(buf), off)
        assert bytes(buf) == f.data[off:off + len(buf)]
        off += len(buf) + 256 * KiB  # skip forward within the tolerance
    s.read_into(memoryview(buf), off - 512 * KiB)  # and a little back
    assert s.stats.resets == 0
    s.read_into(memoryview(buf), 60 * MiB)  # a real seek
    assert s.stats.resets == 1


def test_backpressure_stops_read_ahead_of_an_idle_reader(executor):
    f = FakeFile(64 * MiB)
    budget = PrefetchBudget(1 << 30)
    s = _stream(f, executor, budget=budget)
    buf = bytearray(128 * KiB)
    s.read_into(memoryview(buf), 0)
    time.sleep(0.3)
    fetched = sum(n for _, n in f.fetches)
    assert fetched <= 2 * MiB, fetched  # the initial window, not the file
    assert budget.used <= 2 * MiB
    s.close()
    assert budget.used == 0


def test_global_budget_limits_read_ahead(executor):
    f = FakeFile(64 * MiB)
    budget = PrefetchBudget(1 * MiB)
    s = _stream(f, executor, budget=budget, initial_window=8 * MiB)
    buf = bytearray(128 * KiB)
    out = bytearray()
    off = 0
    while n := s.read_into(memoryview(buf), off):
        out += buf[:n]
        off += n
        assert budget.used <= 1 * MiB + 4 * MiB  # one request may exceed an empty budget
    assert bytes(out) == f.data


def test_fetch_failure_surfaces_then_recovers(executor):
    f = FakeFile(8 * MiB, fail=True)
    s = _stream(f, executor)
    buf = bytearray(64 * KiB)
    with pytest.raises(ConnectionClosedError):
        s.read_into(memoryview(buf), 0)
    f.fail = False
    assert s.read_into(memoryview(buf), 0) == len(buf) and bytes(buf) == f.data[:len(buf)]
    out = bytearray()
    off = len(buf)
    while n := s.read_into(memoryview(buf), off):
        out += buf[:n]
        off += n
    assert bytes(out) == f.data[len(buf):]


def test_concurrent_readers_of_one_stream(executor):
    f = FakeFile(16 * MiB)
    s = _stream(f, executor)
    errors = []

    def worker(k):
        buf = bytearray(128 * KiB)
        try:
            for off in range(k * 128 * KiB, len(f.data), 4 * 128 * KiB):
                n = s.read_into(memoryview(buf), off)
                assert bytes(buf[:n]) == f.data[off:off + n]
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


# ------------------------------------------------------------------------------- pool
class FakeSession:
    def __init__(self):
        self.closed = False

    def close(self):
        self.closed = True


def test_pool_bounds_and_reuses_sessions():
    made = []
    pool = SessionPool(lambda: made.append(FakeSession()) or made[-1], max_sessions=2, timeout=0.2)
    a, b = pool.acquire(), pool.acquire()
    with pytest.raises(UFTPTimeoutError):
        pool.acquire()
    pool.release(a)
    assert pool.acquire() is a and len(made) == 2
    assert pool.try_acquire(reserve=0) is None  # both busy
    pool.release(a)
    pool.release(b)
    assert pool.try_acquire(reserve=2) is None  # would leave fewer than 2 spare
    pool.close()
    assert a.closed and b.closed


def test_pool_shrinks_to_the_server_limit():
    made = []

    def connect():
        if len(made) >= 2:
            raise LoginError(500, "Too many active transfer requests / sessions for 'u' - server limit is 2")
        made.append(FakeSession())
        return made[-1]

    pool = SessionPool(connect, max_sessions=8, timeout=1.0)
    a, b = pool.acquire(), pool.acquire()
    threading.Timer(0.2, pool.release, args=(a,)).start()
    assert pool.acquire() is a  # waited for a free one instead of failing
    assert pool.max_sessions == 2
    pool.release(a)
    pool.release(b)


def test_pool_retries_a_dead_reused_session_and_fails_fast_when_down():
    made = []
    pool = SessionPool(lambda: made.append(FakeSession()) or made[-1], max_sessions=4, timeout=1.0, cooldown=0.3)
    s = pool.acquire()
    pool.release(s)

    def op(session):
        if session is made[0]:
            session.closed = True
            raise ConnectionClosedError("server closed the control connection")
        return "ok"

    assert pool.call(op) == "ok" and pool.stats.retried == 1

    def frozen(session):
        raise UFTPTimeoutError("no reply")

    with pytest.raises(UFTPTimeoutError):
        pool.call(frozen)
    t0 = time.monotonic()
    with pytest.raises(ServerUnresponsiveError):
        pool.call(lambda s: "never runs")
    assert time.monotonic() - t0 < 0.1
    time.sleep(0.35)
    assert pool.call(lambda s: "probe") == "probe"


# ------------------------------------------------------------------------------- writer
@pytest.fixture
def real_pool(uftpd, workdir, impl):
    secret = new_secret()
    uftpd.add_job(secret=secret, user="tester", file=str(workdir) + "/", client_ip="127.0.0.1", persistent=True)

    def make(max_sessions=4):
        pool = SessionPool(lambda: uftpcore.connect("127.0.0.1", uftpd.port, secret, timeout=10,
                                                    implementation=impl), max_sessions=max_sessions, timeout=10)
        pools.append(pool)
        return pool

    pools: list[SessionPool] = []
    yield make
    for p in pools:
        p.close()


def test_writer_streams_contiguous_writes_and_ranges_the_rest(real_pool, workdir):
    pool = real_pool()
    w = FileWriter("/w.bin", pool, 0, lambda p: p.lstrip("/"))
    w.write(b"a" * 1000, 0)
    w.write(b"b" * 1000, 1000)
    assert w.dirty
    w.write(b"c" * 10, 500)  # not contiguous: ends the stream, starts a ranged one
    w.write(b"d" * 10, 5000)  # beyond the end: a hole
    w.flush()
    assert not w.dirty
    assert (workdir / "w.bin").read_bytes() == b"a" * 500 + b"c" * 10 + b"a" * 490 + b"b" * 1000 + b"\0" * 3000 \
        + b"d" * 10
    assert w.size == 5010
    w.close()


def test_writer_buffers_when_no_session_can_be_spared(real_pool, workdir):
    pool = real_pool(max_sessions=2)
    (workdir / "b.bin").write_bytes(b"0123456789")
    w = FileWriter("/b.bin", pool, 10, lambda p: p.lstrip("/"), buffer_limit=64)
    w.write(b"AB", 2)
    w.write(b"CD", 4)
    w.write(b"Z", 3)  # overlaps the pending buffer
    assert (workdir / "b.bin").read_bytes() == b"0123456789"  # still buffered
    w.write(b"x" * 100, 200)  # non-contiguous: the buffer goes out, this one exceeds the limit
    assert (workdir / "b.bin").read_bytes()[:10] == b"01AZCD6789"
    w.close()
    assert (workdir / "b.bin").read_bytes()[200:] == b"x" * 100


def test_writer_errors_are_sticky_and_reported(real_pool, workdir):
    pool = real_pool()
    w = FileWriter("/no/such/dir/f.bin", pool, 0, lambda p: p.lstrip("/"))
    with pytest.raises(UFTPError):
        w.write(b"data", 0)
        w.flush()
    with pytest.raises(UploadFailedError):
        w.write(b"more", 4)
    with pytest.raises(UploadFailedError):
        w.flush()
