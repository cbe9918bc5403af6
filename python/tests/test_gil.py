"""The codec runs without the GIL: other Python threads run meanwhile, and two threads code in
parallel on two cores."""
import hashlib
import os
import threading
import time

import numpy as np
import pytest

import splitrans


@pytest.fixture(scope="module")
def big():
    rng = np.random.default_rng(0)
    x = np.maximum(rng.standard_normal((1024, 64, 64), dtype=np.float32), 0)  # 4 Mi elements, 16 MiB
    return x, splitrans.encode(x, q=4, mode="auto"), splitrans.encode(np.concatenate([x] * 4), q=4)


def counts_while(fn):
    """Iterations of a pure-Python loop in this thread while fn runs in another, and fn's time."""
    done = threading.Event()
    took = []

    def work():
        t = time.perf_counter()
        fn()
        took.append(time.perf_counter() - t)
        done.set()

    th = threading.Thread(target=work)
    n = 0
    th.start()
    while not done.is_set():
        n += 1
    th.join()
    return n, took[0]


def loop_rate(seconds=0.3):
    """Iterations per second of the same loop with nothing else running in this process."""
    done = threading.Event()
    timer = threading.Timer(seconds, done.set)
    n = 0
    t = time.perf_counter()
    timer.start()
    while not done.is_set():
        n += 1
    return n / (time.perf_counter() - t)


@pytest.mark.parametrize("what", ["encode", "decode", "inspect", "search"])
def test_other_threads_run_while_coding(big, what):
    x, data, data16 = big
    fn = {  # one or two long calls each (0.2-0.5 s on an idle 2-core machine)
        "encode": lambda: [splitrans.encode(x, q=4, mode="auto") for _ in range(2)],
        "decode": lambda: [splitrans.decode(data16) for _ in range(2)],
        "inspect": lambda: splitrans.inspect(data16),
        "search": lambda: splitrans.search(x[:512], q=8),
    }[what]
    fn()
    # With the GIL held during the calls this thread would count only around them (a switch interval,
    # 5 ms, each: under 0.1 of its usual rate); released, at about its usual rate (0.5 or more when
    # this thread and the codec share one core).
    for attempt in range(2):
        n, took = counts_while(fn)
        alone = loop_rate()
        if n >= 0.4 * alone * took:
            return
    pytest.fail("%s: %d iterations in %.3f s beside the codec, %.0f/s alone (%.2f of it)" % (
        what, n, took, alone, n / (alone * took)))


def parallel_ratio(fn):
    """Wall time of fn in two threads at once over fn twice in sequence."""
    fn()
    t = time.perf_counter()
    fn()
    fn()
    seq = time.perf_counter() - t
    threads = [threading.Thread(target=fn) for _ in range(2)]
    t = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return (time.perf_counter() - t) / seq


def test_two_threads_code_faster_than_one(big):
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("fewer than 2 CPUs available")
    x, data, _ = big

    def work():
        for _ in range(3):
            splitrans.encode(x, q=4, mode="auto")
            splitrans.decode(data)

    # Other processes may hold the cores: each attempt also times hashlib's sha256 (it releases the GIL
    # on buffers > 2 KiB) the same way, and no attempt with a free core means skip, not fail.
    blob = b"\x5a" * (48 << 20)
    ratios, refs = [], []
    for attempt in range(3):
        ratios.append(parallel_ratio(work))
        if ratios[-1] < 0.8:
            return
        refs.append(parallel_ratio(lambda: [hashlib.sha256(blob).digest() for _ in range(4)]))
    seen = "the codec %s, sha256 %s" % (", ".join("%.2f" % r for r in ratios), ", ".join("%.2f" % r for r in refs))
    if min(refs) >= 0.8:
        pytest.skip("no spare core now (other load): two threads over sequential time: " + seen)
    pytest.fail("two threads coding are not faster than one (expected < 0.8 of sequential): " + seen)
