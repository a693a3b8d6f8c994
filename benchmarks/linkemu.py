"""A userspace WAN link emulator for UFTP on loopback (this kernel has no netem).

An FTP-aware TCP proxy: the control connection is forwarded and every ``227``/``229`` passive
reply is rewritten so the data connections also go through the proxy.  Every forwarded
connection gets, per direction:

* a one-way delay of RTT/2 for every chunk,
* a window: at most ``window`` bytes in flight (sent and not yet "acknowledged"; an
  acknowledgement comes back RTT/2 after delivery), so one connection moves at most
  ``window / RTT`` bytes per second, as a TCP flow with that window would,
* an aggregate rate cap shared by all connections (token bucket).

Usage from Python (benchmarks): ``with LinkEmulator(target_port, rtt=0.025, window=256<<10,
rate=0) as emu: emu.port`` — or ``python benchmarks/linkemu.py --target-port P --rtt-ms 25``.
Only loopback addresses are used.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import threading
import time

log = logging.getLogger("linkemu")

HOST = "127.0.0.1"
CHUNK = 64 * 1024
_EPSV = re.compile(rb"^(229 .*\(\|\|\|)(\d+)(\|\).*)$")
_PASV = re.compile(rb"^(227 .*\()(\d+,\d+,\d+,\d+),(\d+),(\d+)(\).*)$")


class TokenBucket:
    """Aggregate rate cap (bytes/s) shared by every direction of every connection."""

    def __init__(self, rate: float):
        self.rate = rate
        self.tokens = 0.0
        self.last = time.monotonic()

    async def take(self, n: int) -> None:
        if self.rate <= 0:
            return
        while True:
            now = time.monotonic()
            self.tokens = min(self.rate * 0.05, self.tokens + (now - self.last) * self.rate)
            self.last = now
            if self.tokens >= n or self.tokens >= self.rate * 0.05:
                self.tokens -= n
                return
            await asyncio.sleep((n - self.tokens) / self.rate)


class LinkEmulator:
    """Runs the proxy on its own event loop thread."""

    def __init__(self, target_port: int, rtt: float = 0.025, window: int = 256 * 1024, rate: float = 0.0,
                 target_host: str = HOST):
        self.target = (target_host, target_port)
        self.rtt = rtt
        self.window = window
        self.bucket = TokenBucket(rate)
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._servers: list[asyncio.AbstractServer] = []

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> LinkEmulator:
        self._thread = threading.Thread(target=self._run, name="linkemu", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("link emulator did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(
            asyncio.start_server(lambda r, w: self._control(r, w), HOST, 0))
        self._servers.append(server)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            for srv in self._servers:
                srv.close()
            self._loop.set_exception_handler(lambda loop, ctx: None)  # teardown noise only
            pending = asyncio.all_tasks(self._loop)
            for task in pending:
                task.cancel()
            self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self._loop.close()

    # ------------------------------------------------------------------ forwarding
    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    rewrite=None) -> None:
        """One direction: delay, window and rate cap; ``rewrite`` edits control lines."""
        half = self.rtt / 2
        inflight = 0
        room = asyncio.Condition()
        queue: asyncio.Queue = asyncio.Queue()

        async def ack(n: int) -> None:
            nonlocal inflight
            await asyncio.sleep(half)
            async with room:
                inflight -= n
                room.notify_all()

        async def deliver() -> None:
            while True:
                due, data = await queue.get()
                if data is None:
                    break
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                await self.bucket.take(len(data))
                writer.write(data)
                await writer.drain()
                asyncio.ensure_future(ack(len(data)))
            try:
                writer.write_eof()
            except (OSError, RuntimeError):
                pass

        sender = asyncio.ensure_future(deliver())
        try:
            while True:
                async with room:
                    await room.wait_for(lambda: inflight < self.window)
                    budget = self.window - inflight
                if rewrite is not None:
                    line = await reader.readline()
                    data = await rewrite(line) if line else b""
                else:
                    data = await reader.read(min(CHUNK, budget))
                if not data:
                    break
                async with room:
                    inflight += len(data)
                await queue.put((time.monotonic() + half, data))
        except (ConnectionError, OSError):
            pass
        finally:
            await queue.put((0, None))
            await sender

    async def _forward(self, creader, cwriter, target: tuple[str, int], rewrite_down=None) -> None:
        try:
            sreader, swriter = await asyncio.open_connection(*target)
        except OSError:
            cwriter.close()
            return
        up = asyncio.ensure_future(self._pipe(creader, swriter))
        down = asyncio.ensure_future(self._pipe(sreader, cwriter, rewrite_down))
        await asyncio.gather(up, down, return_exceptions=True)
        for w in (swriter, cwriter):
            try:
                w.close()
            except (OSError, RuntimeError):
                pass

    async def _data_listener(self, server_port: int) -> int:
        """A one-shot proxy port for one passive data connection."""
        holder: dict[str, asyncio.AbstractServer] = {}

        async def on_connect(r, w):
            holder["srv"].close()
            await self._forward(r, w, (self.target[0], server_port))

        srv = await asyncio.start_server(on_connect, HOST, 0)
        holder["srv"] = srv
        return srv.sockets[0].getsockname()[1]

    async def _control(self, reader, writer) -> None:
        async def rewrite(line: bytes) -> bytes:
            m = _EPSV.match(line.rstrip(b"\r\n"))
            if m:
                port = await self._data_listener(int(m.group(2)))
                return m.group(1) + str(port).encode() + m.group(3) + b"\n"
            m = _PASV.match(line.rstrip(b"\r\n"))
            if m:
                port = await self._data_listener(int(m.group(3)) * 256 + int(m.group(4)))
                return (m.group(1) + b"127,0,0,1," + f"{port // 256},{port % 256}".encode() + m.group(5) + b"\n")
            return line

        await self._forward(reader, writer, self.target, rewrite)


def main() -> int:
    ap = argparse.ArgumentParser(description="UFTP-aware WAN link emulator on loopback")
    ap.add_argument("--target-port", type=int, required=True, help="UFTPD listen port on 127.0.0.1")
    ap.add_argument("--rtt-ms", type=float, default=25.0)
    ap.add_argument("--window-kib", type=int, default=256)
    ap.add_argument("--rate-mib", type=float, default=0.0, help="aggregate cap, MiB/s (0 = none)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO)
    with LinkEmulator(args.target_port, args.rtt_ms / 1000, args.window_kib * 1024, args.rate_mib * (1 << 20)) as emu:
        log.info("proxy for 127.0.0.1:%d listening on 127.0.0.1:%d", args.target_port, emu.port)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
