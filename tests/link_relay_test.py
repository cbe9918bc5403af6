"""Tests of tools/link_relay.py (the delay relay of the link benchmark), on loopback only.

Run by ctest (link_relay_test) or: /usr/bin/python3 -m pytest tests/link_relay_test.py
"""

import hashlib
import os
import socket
import subprocess
import sys
import threading
import time

import pytest

RELAY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools", "link_relay.py")


class EchoServer:
    """Echoes every byte back; counts connections."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._echo, args=(c,), daemon=True).start()

    @staticmethod
    def _echo(c):
        with c:
            while True:
                d = c.recv(65536)
                if not d:
                    return
                c.sendall(d)


@pytest.fixture
def relay_factory():
    procs = []

    def start(target_port, *extra):
        p = subprocess.Popen([sys.executable, RELAY, "--listen", "127.0.0.1:0", "--target",
                              f"127.0.0.1:{target_port}", *extra], stdout=subprocess.PIPE, text=True)
        procs.append(p)
        line = p.stdout.readline().strip()
        assert line.startswith("listening 127.0.0.1:"), line
        return int(line.rsplit(":", 1)[1])

    yield start
    for p in procs:
        p.terminate()
        assert p.wait(timeout=10) == 0, "the relay exits 0 on SIGTERM"


def round_trip(port, payload):
    with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
        t = time.monotonic()
        s.sendall(payload)
        got = b""
        while len(got) < len(payload):
            d = s.recv(65536)
            assert d, "connection closed early"
            got += d
        return time.monotonic() - t, got


def test_echo_server_is_fast_without_the_relay():
    echo = EchoServer()
    direct, _ = round_trip(echo.port, b"ping")
    assert direct < 0.05


@pytest.mark.parametrize("delay_ms", [0, 30])
def test_round_trip_gains_twice_the_delay(relay_factory, delay_ms):
    echo = EchoServer()
    port = relay_factory(echo.port, "--delay-ms", str(delay_ms))
    times = [round_trip(port, b"ping")[0] for _ in range(5)]
    best = min(times)
    assert best >= 2 * delay_ms / 1000.0, times
    assert best < 2 * delay_ms / 1000.0 + 0.05, times


def test_bytes_arrive_intact_and_in_order(relay_factory):
    echo = EchoServer()
    port = relay_factory(echo.port, "--delay-ms", "5", "--max-buffer-bytes", "100000")
    payload = os.urandom(3 << 20)  # far more than the relay may buffer: back-pressure, not loss
    _, got = round_trip(port, payload)
    assert hashlib.sha256(got).digest() == hashlib.sha256(payload).digest()


def test_rate_limit_paces_each_direction(relay_factory):
    echo = EchoServer()
    port = relay_factory(echo.port, "--rate-mbit", "4")
    payload = os.urandom(250_000)  # 2 Mbit: >= 0.5 s up, and the echo the same again down
    dt, got = round_trip(port, payload)
    assert got == payload
    assert dt >= 0.5, dt
    assert dt < 3.0, dt


def test_unreachable_target_closes_the_connection(relay_factory):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    dead = s.getsockname()[1]
    s.close()
    port = relay_factory(dead)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
        c.sendall(b"x")
        assert c.recv(10) == b""


def test_bad_arguments_are_refused():
    r = subprocess.run([sys.executable, RELAY, "--listen", "nohost", "--target", "127.0.0.1:1"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    assert "is not HOST:PORT" in r.stderr
