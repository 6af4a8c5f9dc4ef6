"""A class on one server: many sessions train at once; does everyone see progress, and fairly?

    python -m bench.bench_load [--sessions 20] [--seconds 30] [--model RealNVP] [--data moons] [--processes 2]

Starts ``python app.py`` (its scheduler trains every active run in turn, one training process per core), then:
1. one session trains alone for ``--seconds``: its steps/s is the reference;
2. ``--sessions`` API clients (each its own session, as separate browsers are) click Train at the same moment and
   train for ``--seconds``: the time from each click to its first update showing a step, each session's steps/s,
   their sum, and the slowest session's share of the fair share (sum / sessions);
3. they all stop and leave; the server's memory is read again.

Each client opens its session before the click, as a page does when it loads (Gradio builds a session's state,
~50 ms of the server's time here, on its first request), and looks for new status lines every 50 ms
(gradio_client's own iterator polls every millisecond: twenty of them took 0.4 of this machine's two cores).

With ``--processes N``, N app processes share one run store (``--workers`` cores/N each) and each session talks to
one of them, as behind a sticky-session load balancer (README, "A class on one server"): how a class is served by
more machines than one. Memory is the app processes' with their training processes'.
Targets (issue "a run owns its life"): every first update ≤ 3 s; combined ≥ 1.5× one session; every session
≥ 50 % of the fair share; memory after they leave within 20 % of before.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path

from gradio_client import Client

from bench.server import Server
from dgm_core.data import load_dataset
from dgm_core.models.registry import defaults_for

STEP = re.compile(r"step \**(\d+)\**")
LOOK_S = 0.05  # a client looks for new status lines this often (a first update is seen at most this late)


class Student:
    """One session: clicks Train, records when the first step shows, then its step count over time."""

    def __init__(self, url: str, dataset: str, model: str) -> None:
        self.client = Client(url, verbose=False)
        self.client.predict(api_name="/stop")  # the session exists before the click, as a page's does once open
        self.args = (dataset, model)
        self.first_update_s: float | None = None
        self.samples: list[tuple[float, int]] = []

    def train(self, go: threading.Event, until: float) -> None:
        dataset, model = self.args
        d = defaults_for(model, load_dataset(dataset).spec)
        go.wait()
        clicked = time.perf_counter()
        job = self.client.submit(
            dataset, model, 1_000_000, d.lr, d.batch_size, d.hidden, 0, 1.0, "best", "constant", 0, api_name="/train"
        )
        seen = 0
        while time.perf_counter() < until and not job.done():
            time.sleep(LOOK_S)  # not ``for output in job``: gradio_client's iterator polls every millisecond,
            outputs, now = job.outputs(), time.perf_counter()  # and twenty of them took 0.4 of this machine's cores
            for output in outputs[seen:]:
                found = STEP.search(output or "")
                if found and int(found[1]) > 0:
                    self.first_update_s = self.first_update_s or now - clicked
                    self.samples.append((now, int(found[1])))
            seen = len(outputs)
        self.client.submit(api_name="/stop").result()
        job.result(timeout=60)

    def rate(self, start: float, end: float) -> float:
        """Steps per second between two times (from the step counts seen nearest to them)."""
        inside = [(t, s) for t, s in self.samples if start <= t <= end]
        if len(inside) < 2:
            return 0.0
        (t0, s0), (t1, s1) = inside[0], inside[-1]
        return (s1 - s0) / (t1 - t0)

    def leave(self) -> None:
        self.client.close()


def crowd(urls: list[str], count: int, seconds: float, dataset: str, model: str) -> list[Student]:
    students = [Student(urls[i % len(urls)], dataset, model) for i in range(count)]
    go, start = threading.Event(), time.perf_counter()
    until = start + seconds + 5
    threads = [threading.Thread(target=s.train, args=(go, until)) for s in students]
    for thread in threads:
        thread.start()
    go.set()
    for thread in threads:
        thread.join()
    return students


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--model", default="RealNVP")
    parser.add_argument("--data", default="moons")
    parser.add_argument("--processes", type=int, default=1, help="app processes sharing one run store")
    args = parser.parse_args()
    runs_dir = Path(tempfile.mkdtemp(prefix="dgm-runs-"))
    workers = None if args.processes == 1 else max(1, (os.cpu_count() or 1) // args.processes)
    with ExitStack() as stack:
        servers = [stack.enter_context(Server(runs_dir, workers)) for _ in range(args.processes)]
        urls = [server.url for server in servers]
        for url in urls:
            (warm,) = crowd([url], 1, 3, args.data, args.model)  # imports, caches, first allocations
            warm.leave()
        time.sleep(2)
        before = sum(server.rss_mb() for server in servers)
        (alone,) = crowd(urls, 1, args.seconds, args.data, args.model)
        window = (alone.samples[0][0] + 3, alone.samples[0][0] + 3 + args.seconds)
        solo = alone.rate(*window)
        alone.leave()
        print(
            f"{args.model} on {args.data}; {args.processes} app process(es) with "
            f"{workers or 'one per core'} training process(es) each; RSS before {before:.0f} MB"
        )
        print(f"one session alone: {solo:.1f} steps/s")
        students = crowd(urls, args.sessions, args.seconds, args.data, args.model)
        start = max(s.samples[0][0] for s in students if s.samples)
        rates = [s.rate(start, start + args.seconds - 2) for s in students]
        firsts = [s.first_update_s for s in students]
        peak = sum(server.rss_mb() for server in servers)
        for student in students:
            student.leave()
        time.sleep(40)  # pages that closed are let go after 30 s
        after = sum(server.rss_mb() for server in servers)
    combined, fair = sum(rates), sum(rates) / len(rates)
    print(f"{args.sessions} sessions at once, {args.seconds:.0f} s:")
    print(f"  first update after the click: median {statistics.median(firsts):.2f} s, worst {max(firsts):.2f} s")
    print(f"  steps/s per session: min {min(rates):.1f}, median {statistics.median(rates):.1f}, max {max(rates):.1f}")
    print(f"  combined {combined:.1f} steps/s = {combined / solo:.2f}× one session alone")
    print(f"  the slowest session got {min(rates) / fair:.0%} of the fair share")
    print(f"  server memory: {before:.0f} MB before, {peak:.0f} MB with them, {after:.0f} MB after they left")
    checks = [
        ("every first update ≤ 3 s", max(firsts) <= 3),
        ("combined ≥ 1.5× one session", combined >= 1.5 * solo),
        ("no session below 50 % of the fair share", min(rates) >= 0.5 * fair),
        ("memory after they leave within 20 % of before", after <= 1.2 * before),
    ]
    for text, ok in checks:
        print(f"  [{'met' if ok else 'MISSED'}] {text}")


if __name__ == "__main__":
    main()
