"""A class on one server, as its pages use it: Chromium pages and API clients walk a student's journey at once.

    python -m bench.bench_class [--minutes 10] [--pages 2] [--clients 6] [--restart-at MIN] [--seed 0]
    python -m bench.bench_class --compare-first [--burst 40]
    python -m bench.bench_class --soak [--minutes 60]

Starts ``python app.py`` (``bench.server.Server``, its own run store). ``--pages`` Chromium pages (separate browser
contexts: each its own localStorage token) and ``--clients`` API clients (each its own session, sending the events
a page sends through Gradio's queue, ``bench/queue_client.py``) loop over a journey in a random order with human
pauses (``bench/page_journey.py``): a gallery card's Open; Train on digits, a step, Stop, then moons (image → 2D),
Train, Stop; Compare (50 steps per model); Likelihood: pick a run, score its items; upload a CSV of points; reload,
Continue the restored run, Stop. At ``--restart-at`` minutes (default half-way) every journey stops at its next
boundary and lists its runs (Runs tab); the server is terminated and started again on the same port and store; every
page reloads and lists its runs again: a run listed before and not after is lost.

Printed (and written to ``bench/output/bench_class.json``): per kind of click, count and latency p50/p95 from the
click to the page's visible answer (pages: timed in the page, pointerdown → DOM; API clients: send → answering
output); time to first step after Train/Continue; console errors on the pages, distinct, with the step that made
them; runs lost across the restart; the server's RSS (with its training processes) every 30 s and its slope from
minute 2 of each server life (least squares, one slope, an intercept per life); and which events each activity sent
from a page and from an API client (the replay is faithful when they match).

``--compare-first``: one client runs a short comparison, then ``--burst`` sessions (opened before the click, as
``bench_load``'s) press Train at the same moment: every session's time to its first step.

``--soak``: no restart; students come and go: each page or API client stays 2–6 minutes, leaves (the page closes, the
client disconnects: Gradio unloads it) and a new student with a new browser takes its place; every 5 minutes a few
``gradio_client`` sessions train a little and leave without a word (no unload: the server lets them go when idle).
Printed besides the clicks: the RSS at minute 5 and at the end, and their ratio.

Targets: non-training clicks p95 ≤ 1 s; 0 console errors; 0 runs lost; after a comparison every first step ≤ 3 s;
in a 60-minute soak, RSS at the end within 10 % of minute 5.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path

import httpx
from playwright.async_api import async_playwright

from bench.api_journey import ApiJourney
from bench.bench_browser import CHROMIUM
from bench.page_journey import TRAINING, BrowserJourney, Gate, Recorder
from bench.queue_client import AppConfig
from bench.server import Server

ARGS = (
    "--no-sandbox --disable-gpu --disable-dev-shm-usage --disable-background-networking --disable-component-update "
    "--no-first-run --disable-sync"
).split()
OUTPUT = Path(__file__).resolve().parent / "output" / "bench_class.json"
RSS_EVERY_S, MISSED_SHOWN = 30.0, 12
CLICK_TARGET_S, FIRST_STEP_TARGET_S = 1.0, 3.0
EXPECTED = ("restart", "reload (old page)")  # errors a page logs when its server goes away, or as it unloads


def mark(ok: bool) -> str:
    return "[met]" if ok else "[MISSED]"


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class Lives:
    """The server across its restart: the one serving now, and when each life began."""

    def __init__(self, server: Server) -> None:
        self.server, self.began, self.down_s = server, [time.perf_counter()], None


async def sample_rss(lives: Lives, rss: list, until: float) -> None:
    while time.perf_counter() < until:
        server = lives.server
        if server.process is not None and server.process.poll() is None:
            now = time.perf_counter()
            rss.append(
                (len(lives.began) - 1, (now - lives.began[-1]) / 60, (now - lives.began[0]) / 60, server.rss_mb())
            )
        await asyncio.sleep(RSS_EVERY_S)


def slope(rss: list, from_minute: float = 2.0) -> float | None:
    """MB per minute: least squares over the samples from minute 2 of each life, one slope, an intercept per life."""
    top = bottom = 0.0
    for life in {row[0] for row in rss}:
        points = [(m, mb) for lf, m, _, mb in rss if lf == life and m >= from_minute]
        if len(points) < 2:
            continue
        mean_m, mean_mb = statistics.fmean(m for m, _ in points), statistics.fmean(mb for _, mb in points)
        top += sum((m - mean_m) * (mb - mean_mb) for m, mb in points)
        bottom += sum((m - mean_m) ** 2 for m, _ in points)
    return top / bottom if bottom else None


async def restart(lives: Lives, gate: Gate, rec: Recorder, after_s: float) -> None:
    await asyncio.sleep(after_s)
    gate.requested.set()
    try:
        await asyncio.wait_for(gate.all_waiting.wait(), 240)
    except TimeoutError:
        rec.missed["controller", "journeys not at a boundary in 240 s"] += 1
    rec.restarting = True
    old, started = lives.server, time.perf_counter()
    await asyncio.to_thread(old.stop)  # SIGTERM
    lives.server = await asyncio.to_thread(Server(old.runs_dir, port=old.port).start)
    lives.down_s = time.perf_counter() - started
    lives.began.append(time.perf_counter())
    gate.resumed.set()


async def students_come_and_go(journey: Callable[[int], Awaitable], until: float, rng: random.Random) -> None:
    """One seat of the class, for a soak: a student stays 2–6 minutes and leaves; the next one takes the seat."""
    n = 0
    while time.perf_counter() < until - 60:
        n += 1
        await journey(n, min(until, time.perf_counter() + rng.uniform(120, 360)))


async def silent_visitors(url: str, until: float, every_s: float = 300.0, count: int = 4) -> None:
    """API sessions that train a few seconds and go without unloading (the idle timeout lets them go)."""
    from bench.bench_load import crowd

    while time.perf_counter() + every_s < until:
        await asyncio.sleep(every_s)
        for student in await asyncio.to_thread(crowd, [url], count, 5, "moons", "RealNVP"):
            student.leave()


async def run_class(args: argparse.Namespace) -> dict:
    args.load_before = os.getloadavg()  # this machine's other work shares its cores: said with the figures
    workdir = Path(tempfile.mkdtemp(prefix="bench-class-"))
    lives = Lives(await asyncio.to_thread(Server().start))
    await asyncio.to_thread(lives.server.wait_warm)  # the class arrives at a server started a while ago
    url, rec, rss = lives.server.url, Recorder(), []
    journeys_n = args.pages + args.clients
    gate = Gate(journeys_n)
    until = time.perf_counter() + args.minutes * 60
    try:
        async with async_playwright() as playwright, httpx.AsyncClient(timeout=60) as http:
            config = AppConfig((await http.get(url + "config")).json())
            chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            if args.soak:
                background = [asyncio.create_task(sample_rss(lives, rss, until + 60))]
                await asyncio.gather(*await soak(args, chromium, http, config, url, rec, until, workdir))
            else:
                background = [
                    asyncio.create_task(sample_rss(lives, rss, until + 600)),
                    asyncio.create_task(restart(lives, gate, rec, args.restart_at * 60)),
                ]
                await stay_all_along(args, chromium, http, config, url, rec, gate, until, workdir)
            for task in background:
                task.cancel()
            await chromium.close()
    finally:
        lives.server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    args.load_after = os.getloadavg()
    return summarise(args, rec, rss, lives, config)


async def stay_all_along(args, chromium, http, config, url, rec, gate, until, workdir) -> None:
    """The same students for the whole run, arriving over a few seconds, not in the same millisecond."""
    journeys = []
    for i in range(args.pages):
        context = await chromium.new_context(viewport={"width": 1400, "height": 1000})
        journeys.append(BrowserJourney(context, config, f"page{i}", url, rec, gate, args.seed + i, workdir))
    for i in range(args.clients):
        journeys.append(ApiJourney(http, config, f"api{i}", url, rec, gate, args.seed + 100 + i, workdir))
    tasks = []
    for journey in journeys:
        tasks.append(asyncio.create_task(journey.run(until)))
        await asyncio.sleep(2)
    for journey, ended in zip(journeys, await asyncio.gather(*tasks, return_exceptions=True)):
        if isinstance(ended, BaseException):  # noted; the others' figures still count
            rec.missed[journey.source, f"journey ended: {type(ended).__name__}: {ended}"[:120]] += 1


async def soak(args, chromium, http, config, url, rec, until, workdir) -> list[asyncio.Task]:
    """Seats whose students come and go (``students_come_and_go``), and the silent visitors."""
    gate, rng = Gate(0), random.Random(args.seed)

    async def page(seat: int, n: int, leave_at: float) -> None:
        context = await chromium.new_context(viewport={"width": 1400, "height": 1000})
        try:
            await BrowserJourney(context, config, f"page{seat}-{n}", url, rec, gate, rng.randrange(10**6), workdir).run(
                leave_at
            )
        except Exception as error:  # noted; the seat goes on
            rec.missed["page", f"journey ended: {type(error).__name__}: {error}"[:120]] += 1
        finally:
            await context.close()  # the page closes: its heartbeat ends, Gradio unloads it

    async def client(seat: int, n: int, leave_at: float) -> None:
        journey = ApiJourney(http, config, f"api{seat}-{n}", url, rec, gate, rng.randrange(10**6), workdir)
        try:
            await journey.run(leave_at)  # it disconnects at the end
        except Exception as error:
            rec.missed["api", f"journey ended: {type(error).__name__}: {error}"[:120]] += 1

    tasks = [asyncio.create_task(silent_visitors(url, until))]
    for seat in range(args.pages + args.clients):
        journey = page if seat < args.pages else client
        tasks.append(asyncio.create_task(students_come_and_go(partial(journey, seat), until, rng)))
        await asyncio.sleep(2)
    return tasks


def describe(config: AppConfig, fn: int) -> str:
    """An event as "<elem_id>.<event>" (a gallery card's as open-<card>), or "then <function>"."""
    dep = config.deps.get(fn)
    if dep is None:
        return str(fn)
    if dep["trigger_after"] is not None:
        return f"then {dep['api_name']}"
    component, event = dep["targets"][0]
    elem = config.components.get(component, {}).get("props", {}).get("elem_id") or ("page" if component == 0 else "?")
    return re.sub(r"^(open|live)-.*", r"\1-<card>", elem) + "." + event


def summarise(args, rec: Recorder, rss: list, lives: Lives, config: AppConfig) -> dict:
    clicks = []
    for (source, kind), values in sorted(rec.clicks.items(), key=lambda item: (item[0][1], item[0][0])):
        missed = rec.missed.get((source, kind), 0)
        row = {
            "kind": kind,
            "source": source,
            "count": len(values),
            "missed": missed,
            "p50_s": quantile(values, 0.5),
            "p95_s": quantile(values, 0.95),
            "max_s": max(values),
        }
        if kind not in TRAINING and "reload" not in kind and kind != "open":
            row["target"] = f"p95 ≤ {CLICK_TARGET_S:g} s"
            row["met"] = row["p95_s"] <= CLICK_TARGET_S and missed == 0
        clicks.append(row)
    firsts = [v for (source, kind), values in rec.clicks.items() if kind == "first step" for v in values]
    outside = [c for c in rec.console if c[2] not in EXPECTED]
    distinct = Counter((c[3], c[2]) for c in rec.console)
    lost = {name: sorted(set(runs.get("before", [])) - set(runs.get("after", []))) for name, runs in rec.runs.items()}
    listed = sum(len(runs.get("before", [])) for runs in rec.runs.values())
    events = {}
    for (source, step), fns in rec.sent.items():
        events.setdefault(step, {})[source] = sorted({describe(config, fn) for fn in fns})
    return {
        "args": vars(args),
        "clicks": clicks,
        "other_failures": {f"{s} {k}": n for (s, k), n in rec.missed.items() if (s, k) not in rec.clicks},
        "missed": [{"minute": m, "journey": j, "kind": k, "showed": t} for m, j, k, t in rec.notes],
        "first_step_s": {
            "count": len(firsts),
            "p50": quantile(firsts, 0.5),
            "p95": quantile(firsts, 0.95),
            "max": max(firsts),
            "missed": sum(n for (_, k), n in rec.missed.items() if k == "first step"),
        }
        if firsts
        else None,
        "slowest": sorted(rec.slowest, reverse=True),
        "console_errors": {
            "count": len(rec.console),
            "outside_restart": len(outside),
            "distinct": [{"message": m, "step": s, "count": n} for (m, s), n in distinct.most_common()],
            "all": rec.console,
        },
        "restart": {
            "server_down_s": lives.down_s,
            "runs_listed_before": listed,
            "lost": sum(len(v) for v in lost.values()),
            "lost_by_browser": lost,
            "runs": rec.runs,
        },
        "rss_mb": [{"life": lf, "minute": round(total, 2), "mb": round(mb, 1)} for lf, _, total, mb in rss],
        "rss_slope_mb_per_min": slope(rss),
        "events_by_activity": events,
    }


def report(summary: dict) -> None:
    a, down = summary["args"], summary["restart"]["server_down_s"] or 0
    life = (
        "students coming and going, no restart"
        if a["soak"]
        else f"restart at {a['restart_at']:g} min (server down {down:.1f} s)"
    )
    print(
        f"A class on one server: {a['pages']} Chromium pages + {a['clients']} API clients, {a['minutes']:g} min, "
        f"{life}; load average before {a['load_before'][1]:.1f}, after {a['load_after'][1]:.1f} (5 min, 2 cores)"
    )
    print(f"{'click → visible answer':<22} {'source':<6} {'n':>4} {'p50 s':>6} {'p95 s':>6} {'max s':>6} {'missed':>6}")
    for row in summary["clicks"]:
        verdict = f"  {mark(row['met'])} {row['target']}" if "target" in row else ""
        print(
            f"{row['kind']:<22} {row['source']:<6} {row['count']:>4} {row['p50_s']:>6.2f} {row['p95_s']:>6.2f} "
            f"{row['max_s']:>6.2f} {row['missed']:>6}{verdict}"
        )
    slowest = ", ".join(
        f"{kind} ({source}) {sec:.1f} s at minute {minute:g}" for sec, minute, source, kind, _ in summary["slowest"]
    )
    print(f"  slowest answers: {slowest}")
    for what, n in summary["other_failures"].items():
        print(f"  failed: {what} ×{n}")
    for item in summary["missed"][:MISSED_SHOWN]:
        print(f"  missed at minute {item['minute']:.1f}, {item['journey']} {item['kind']}: {item['showed'][:110]}")
    if len(summary["missed"]) > MISSED_SHOWN:
        print(f"  … {len(summary['missed']) - MISSED_SHOWN} more in the JSON")
    first = summary["first_step_s"]
    if first:
        ok = first["max"] <= FIRST_STEP_TARGET_S and not first["missed"]
        print(
            f"time to first step (Train/Continue): n {first['count']}, p50 {first['p50']:.2f} s, p95 "
            f"{first['p95']:.2f} s, max {first['max']:.2f} s, none in 30 s: {first['missed']}  "
            f"{mark(ok)} ≤ {FIRST_STEP_TARGET_S:g} s"
        )
    errors = summary["console_errors"]
    print(
        f"console errors on the pages: {errors['count']}; {errors['outside_restart']} while the server is up and "
        f"the page not unloading  {mark(errors['outside_restart'] == 0)} 0"
    )
    for item in errors["distinct"]:
        print(f"  ×{item['count']} during {item['step']!r}: {item['message']}")
    if a["soak"]:
        report_soak(summary["rss_mb"])
        return
    restart_ = summary["restart"]
    print(
        f"runs lost across the restart: {restart_['lost']} of {restart_['runs_listed_before']} listed  "
        f"{mark(restart_['lost'] == 0)} 0"
    )
    for name, ids in restart_["lost_by_browser"].items():
        if ids:
            print(f"  {name}: lost runs {ids}")
    samples = " ".join(f"{row['minute']:.1f}:{row['mb']:.0f}" for row in summary["rss_mb"])
    rate = summary["rss_slope_mb_per_min"]
    print(f"server RSS with its training processes (minute:MB): {samples}")
    print(f"  slope from minute 2 of each life: {'—' if rate is None else f'{rate:+.1f} MB/min'}")
    print("events each activity sent (page | API client):")
    for step, by_source in summary["events_by_activity"].items():
        page, api = set(by_source.get("page", [])), set(by_source.get("api", []))
        same = "same" if page == api else f"page only {sorted(page - api)}; API only {sorted(api - page)}"
        print(f"  {step}: {len(page)} | {len(api)} kinds: {same}")


def report_soak(rss: list[dict]) -> None:
    samples = " ".join(f"{row['minute']:.0f}:{row['mb']:.0f}" for row in rss[::4])
    print(f"server RSS with its training processes (minute:MB, every 2 min): {samples}")
    five = min(rss, key=lambda row: abs(row["minute"] - 5))
    end = rss[-1]
    ratio = end["mb"] / five["mb"]
    print(
        f"  minute {five['minute']:.1f}: {five['mb']:.0f} MB; minute {end['minute']:.1f}: {end['mb']:.0f} MB; "
        f"ratio {ratio:.3f}  {mark(abs(ratio - 1) <= 0.10)} within 10 %"
    )


# --- after a comparison, a burst of Train clicks ----------------------------------------------------------------------


def compare_first(args: argparse.Namespace) -> dict:
    from gradio_client import Client

    from bench.bench_load import crowd
    from dgm_core.serve.comparison import default_models

    args.load_before = os.getloadavg()
    with Server() as server:
        server.wait_warm()  # the class arrives at a server started a while ago
        (warm,) = crowd([server.url], 1, 3, "moons", "RealNVP")  # imports, caches, first allocations
        warm.leave()
        started = time.perf_counter()
        compare = Client(server.url, verbose=False)
        compare.predict("moons", default_models("moons"), "steps", 50, api_name="/compare")
        compared_s = time.perf_counter() - started
        compare.close()
        students = crowd([server.url], args.burst, args.window - 5, "moons", "RealNVP")  # watched for args.window s
        firsts = [s.first_update_s for s in students]
        for student in students:
            student.leave()
    seen = sorted(f for f in firsts if f is not None)
    return {
        "args": vars(args),
        "compare_s": compared_s,
        "first_step_s": firsts,
        "sessions_without_step": firsts.count(None),
        "seen": seen,
    }


def report_burst(result: dict) -> None:
    a, seen = result["args"], result["seen"]
    print(f"load average before: {a['load_before'][1]:.1f} (5 min, 2 cores)")
    print(
        f"a comparison of the default models on moons, 50 steps each: {result['compare_s']:.1f} s; then "
        f"{a['burst']} sessions press Train at once (RealNVP on moons):"
    )
    every = sorted(result["first_step_s"], key=lambda f: 1e9 if f is None else f)
    print("  first step, every session (s): " + " ".join("—" if f is None else f"{f:.2f}" for f in every))
    if seen:
        print(
            f"  median {statistics.median(seen):.2f} s, p95 {quantile(seen, 0.95):.2f} s, max {max(seen):.2f} s; "
            f"no step within {a['window']:g} s: {result['sessions_without_step']}"
        )
    ok = not result["sessions_without_step"] and seen and max(seen) <= FIRST_STEP_TARGET_S
    print(f"  {mark(bool(ok))} every first step ≤ {FIRST_STEP_TARGET_S:g} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--pages", type=int, default=2, help="Chromium pages (what two cores carry beside the server)")
    parser.add_argument("--clients", type=int, default=6, help="API clients sending what a page sends")
    parser.add_argument("--restart-at", type=float, default=None, help="minutes (default: half-way)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--soak", action="store_true", help="students come and go; no restart (60 min: the target)")
    parser.add_argument("--compare-first", action="store_true", help="a comparison, then a burst of Train clicks")
    parser.add_argument("--burst", type=int, default=40)
    parser.add_argument("--window", type=float, default=15.0, help="seconds a burst session waits for its first step")
    args = parser.parse_args()
    args.restart_at = args.minutes / 2 if args.restart_at is None else args.restart_at
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    if args.compare_first:
        result = compare_first(args)
        report_burst(result)
        path = OUTPUT.with_name("bench_class_compare_first.json")
    else:
        result = asyncio.run(run_class(args))
        report(result)
        path = OUTPUT
    path.write_text(json.dumps(result, indent=1, default=str))
    print(f"written: {path}")


if __name__ == "__main__":
    main()
