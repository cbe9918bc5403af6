#!/usr/bin/env python3
"""link_relay.py: a TCP relay that adds one-way delay (and, optionally, a bandwidth limit).

The kernels this project runs on have no netem, so tools/link_bench.py puts this relay between
the edge and the cloud to emulate a link's round-trip time: every byte read from one side is
written to the other side `--delay-ms` later (each direction; the round trip gains twice that).
Order is kept per connection. `--rate-mbit` also paces each direction to that rate (the fallback
where `tc` is not available; link_bench.py shapes with tc tbf where it can).

Memory is bounded: a direction holding more than --max-buffer-bytes stops reading until its
writer catches up (TCP back-pressure reaches the sender). Standard library only.

    python3 tools/link_relay.py --listen 127.0.0.1:6001 --target 127.0.0.1:50052 --delay-ms 20

Prints "listening HOST:PORT" once ready (port 0 picks a free one), runs until SIGTERM/SIGINT.
"""

import argparse
import asyncio
import collections
import signal
import sys
import time


def parse_hostport(s):
    host, sep, port = s.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"'{s}' is not HOST:PORT")
    return host.strip("[]"), int(port)


class Direction:
    """One direction of one connection: reader -> delay line (+ pacing) -> writer."""

    def __init__(self, reader, writer, delay_s, rate_bps, max_buffer):
        self.reader, self.writer = reader, writer
        self.delay_s, self.rate_bps, self.max_buffer = delay_s, rate_bps, max_buffer
        self.queue = collections.deque()  # (due time, bytes); None: end of stream
        self.buffered = 0
        self.wake = asyncio.Event()       # the writer has something, or room was made
        self.next_free = 0.0              # pacing: when the link is free again

    def due_time(self, now, nbytes):
        due = now + self.delay_s
        if self.rate_bps:
            start = max(self.next_free, now)
            self.next_free = start + nbytes * 8 / self.rate_bps
            due = self.next_free + self.delay_s
        return due

    async def pump_in(self):
        try:
            while True:
                while self.buffered > self.max_buffer:
                    self.wake.clear()
                    await self.wake.wait()
                data = await self.reader.read(65536)
                if not data:
                    break
                self.queue.append((self.due_time(time.monotonic(), len(data)), data))
                self.buffered += len(data)
                self.wake.set()
        except (ConnectionError, OSError):
            pass
        self.queue.append((time.monotonic() + self.delay_s, None))
        self.wake.set()

    async def pump_out(self):
        try:
            while True:
                while not self.queue:
                    self.wake.clear()
                    await self.wake.wait()
                due, data = self.queue[0]
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                self.queue.popleft()
                if data is None:
                    if self.writer.can_write_eof():
                        self.writer.write_eof()
                    await self.writer.drain()
                    return
                self.writer.write(data)
                await self.writer.drain()
                self.buffered -= len(data)
                self.wake.set()
        except (ConnectionError, OSError):
            pass


async def handle(client_reader, client_writer, args):
    try:
        server_reader, server_writer = await asyncio.open_connection(*args.target)
    except OSError as e:
        print(f"link_relay: cannot reach {args.target}: {e}", file=sys.stderr, flush=True)
        client_writer.close()
        return
    delay = args.delay_ms / 1000.0
    rate = args.rate_mbit * 1e6 if args.rate_mbit else 0
    up = Direction(client_reader, server_writer, delay, rate, args.max_buffer_bytes)
    down = Direction(server_reader, client_writer, delay, rate, args.max_buffer_bytes)
    tasks = [asyncio.ensure_future(t) for t in (up.pump_in(), up.pump_out(), down.pump_in(), down.pump_out())]
    writers = tasks[1], tasks[3]
    try:
        # Done when both directions have delivered their end of stream; a writer that stops
        # early (its peer went away) ends the connection rather than leaving its reader blocked.
        while True:
            done, _ = await asyncio.wait(writers, return_when=asyncio.FIRST_COMPLETED)
            if all(w.done() for w in writers):
                break
            finished = next(iter(done))
            direction = up if finished is tasks[1] else down
            if direction.queue:  # it stopped with data left: the peer is gone
                break
    finally:
        for t in tasks:
            t.cancel()
        for w in (client_writer, server_writer):
            w.close()


async def main_async(args):
    server = await asyncio.start_server(lambda r, w: handle(r, w, args), *args.listen)
    host, port = server.sockets[0].getsockname()[:2]
    print(f"listening {host}:{port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--listen", type=parse_hostport, required=True, help="HOST:PORT to accept on (port 0: any)")
    ap.add_argument("--target", type=parse_hostport, required=True, help="HOST:PORT to forward to")
    ap.add_argument("--delay-ms", type=float, default=0.0, help="one-way delay added to each direction")
    ap.add_argument("--rate-mbit", type=float, default=0.0, help="pace each direction to this rate (0: no limit)")
    ap.add_argument("--max-buffer-bytes", type=int, default=8 << 20,
                    help="bytes one direction may hold before it stops reading")
    args = ap.parse_args()
    if args.delay_ms < 0 or args.rate_mbit < 0:
        ap.error("--delay-ms and --rate-mbit must be >= 0")
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
