"""Thirty students follow the lecturer's run: what do they cost the server, and how far behind are they?

    python -m bench.bench_follow [--followers 30] [--seconds 40]

Starts ``python app.py``; one page (through Gradio's queue, as its front end sends: ``bench.queue_client``) trains
RealNVP on moons for good and shares its run. Three stretches of ``--seconds`` each are then measured, the run
training throughout:
1. the owner's page alone;
2. with ``--followers`` more pages open, idle (a page's own watchers cost something of their own);
3. with those pages following the run (Follow tab: the code typed, Follow clicked).
For each: the server process's CPU (its training processes apart, Linux /proc), the training processes' CPU and the
run's steps/s. A follower's lag: for every status line a follower is sent, how long after the owner's page was first
sent a line with that step or a later one.
Targets (issue "from the click to the code"): 30 followers add ≤ 5 % to the server's CPU; a follower lags ≤ 2 s;
training is not slowed.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import os
import re
import statistics
import time
from pathlib import Path

import httpx

from bench.queue_client import AppConfig, QueuePage
from bench.server import Server, _children

STEP = re.compile(r"step \**(\d+)\**")
TICKS = os.sysconf("SC_CLK_TCK")
CPU_TARGET, LAG_TARGET_S = 0.05, 2.0


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of one process so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


def step_of(text: object) -> int:
    found = STEP.search(text) if isinstance(text, str) else None
    return int(found[1]) if found else -1


class Timeline:
    """When each step was first shown on one stream of status lines: (seconds since start, step), in order."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.steps: list[int] = []

    def saw(self, step: int) -> None:
        if step >= 0 and (not self.steps or step > self.steps[-1]):
            self.times.append(time.perf_counter())
            self.steps.append(step)

    def first_at(self, step: int) -> float | None:
        """When this stream first showed ``step`` or a later one."""
        n = bisect.bisect_left(self.steps, step)
        return self.times[n] if n < len(self.steps) else None


async def watch(event, timeline: Timeline, until: float) -> None:
    """Record every status line ``event`` streams (its first output) until ``until``."""
    seen = None
    while time.perf_counter() < until and not event.done:
        text = event.outputs[0]
        if text is not seen:
            seen = text
            timeline.saw(step_of(text))
        await asyncio.sleep(0.02)


async def status_stream(page: QueuePage, config: AppConfig, timeout: float = 10.0):
    """The follower's status-line stream, started once its Follow click ended."""
    wanted, until = [config.id("follow-status")], time.perf_counter() + timeout
    while time.perf_counter() < until:
        found = [event for event in page.events.values() if event.dep["outputs"] == wanted]
        if found:
            return found[0]
        await asyncio.sleep(0.05)
    raise TimeoutError("the follower's status stream did not start")


async def stretch(server: Server, seconds: float, steps_of) -> dict:
    """CPU seconds per second of the server process and its training processes, and steps/s, over ``seconds``."""
    workers = _children(server.process.pid)
    before = cpu_s(server.process.pid), sum(cpu_s(pid) for pid in workers), steps_of(), time.perf_counter()
    await asyncio.sleep(seconds)
    took = time.perf_counter() - before[3]
    return {
        "server": (cpu_s(server.process.pid) - before[0]) / took,
        "training": (sum(cpu_s(pid) for pid in workers) - before[1]) / took,
        "steps/s": (steps_of() - before[2]) / took,
    }


async def measure(args: argparse.Namespace) -> None:
    server = await asyncio.to_thread(Server().start)
    await asyncio.to_thread(server.wait_warm)
    try:
        async with httpx.AsyncClient(timeout=60) as http:
            config = AppConfig((await http.get(server.url + "config")).json())
            owner = QueuePage(http, server.url, config)
            await owner.open()
            owner.set("steps", 1_000_000)
            (train,) = owner.click("train-btn")
            await train.until(lambda e: step_of(e.outputs[0]) > 0, 60)
            (shared,) = owner.click("share-start")
            await shared.finished(10)
            code = re.search(r"follow code \**(\w+)", owner.value("share-message"))[1]
            until = time.perf_counter() + 3 * args.seconds + 120
            lead = Timeline()
            asyncio.create_task(watch(train, lead, until))
            steps_now = lambda: lead.steps[-1] if lead.steps else 0  # noqa: E731

            alone = await stretch(server, args.seconds, steps_now)
            followers = [QueuePage(http, server.url, config) for _ in range(args.followers)]
            await asyncio.gather(*(page.open() for page in followers))
            idle = await stretch(server, args.seconds, steps_now)
            timelines = [Timeline() for _ in followers]
            for page, timeline in zip(followers, timelines):
                page.set("follow-code", code)
                events = page.click("follow-start")
                await events[0].finished(10)
                asyncio.create_task(watch(await status_stream(page, config), timeline, until))
            await asyncio.sleep(3)  # every follower's streams started
            profiler = None
            if args.profile:  # where the server's time goes while followed (pip install py-spy)
                command = ["py-spy", "record", "-p", str(server.process.pid), "-d", str(int(args.seconds))]
                profiler = await asyncio.create_subprocess_exec(
                    *command, "-f", "raw", "-o", args.profile, stdout=asyncio.subprocess.DEVNULL
                )
            following = await stretch(server, args.seconds, steps_now)
            if profiler is not None:
                await profiler.wait()
            lags = [
                seen - lead_at
                for timeline in timelines
                for seen, step in zip(timeline.times, timeline.steps)
                if (lead_at := lead.first_at(step)) is not None
            ]
            await asyncio.gather(*(page.close() for page in [*followers, owner]))
    finally:
        server.stop()
    report(args, alone, idle, following, lags)


def report(args: argparse.Namespace, alone: dict, idle: dict, following: dict, lags: list[float]) -> None:
    print(f"{args.followers} followers of one RealNVP run on moons; {args.seconds:g} s per stretch; CPU in cores")
    print(f"{'stretch':<34}{'server CPU':>11}{'training CPU':>14}{'steps/s':>9}")
    for name, got in [
        ("the owner's page alone", alone),
        (f"+ {args.followers} pages open, idle", idle),
        (f"+ those {args.followers} pages following", following),
    ]:
        print(f"{name:<34}{got['server']:>11.3f}{got['training']:>14.3f}{got['steps/s']:>9.0f}")
    cores = os.cpu_count() or 1
    added = following["server"] - idle["server"]
    print(
        f"following adds {added:+.3f} cores to the server process ({added / cores:+.1%} of this machine's {cores} "
        f"cores; {following['server'] / max(idle['server'], 1e-9) - 1:+.0%} of its CPU with idle pages)  "
        f"[{'met' if added / cores <= CPU_TARGET else 'MISSED'}] ≤ {CPU_TARGET:.0%}"
    )
    print(f"training steps/s following vs alone: {following['steps/s'] / max(alone['steps/s'], 1e-9):.2f}")
    if lags:
        p95 = statistics.quantiles(lags, n=20)[18] if len(lags) >= 20 else max(lags)
        verdict = "met" if p95 <= LAG_TARGET_S else "MISSED"
        print(
            f"follower lag over {len(lags)} status lines: median {statistics.median(lags):.2f} s, p95 {p95:.2f} s, "
            f"max {max(lags):.2f} s  [{verdict}] p95 ≤ {LAG_TARGET_S:g} s"
        )
    else:
        print("follower lag: no status line reached a follower  [MISSED]")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--followers", type=int, default=30)
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--profile", help="write py-spy's collapsed stacks of the server while followed to this file")
    asyncio.run(measure(parser.parse_args()))


if __name__ == "__main__":
    main()
