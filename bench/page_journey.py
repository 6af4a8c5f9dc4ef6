"""What one student does in a class, over and over: the journeys of ``bench/bench_class.py``.

A journey is a loop over activities in a random order (a seeded RNG per journey), with human pauses between clicks:

- ``gallery``: the Lecture gallery tab, a card's **Open**;
- ``train``: the Train tab, data set ``digits``, Train, wait for a step, Stop; then ``moons`` (the image → 2D switch),
  Train, Stop;
- ``compare``: the Compare tab, a budget of 50 steps per model, Compare, wait until it is done;
- ``likelihood``: the Likelihood tab, pick a run with a likelihood, Score every test item;
- ``upload``: your own data, a CSV of 2D points, Use these files;
- ``reload and continue``: reload the page, Continue the restored run, wait for a step, Stop.

``BrowserJourney`` does it in a Chromium page (Playwright, async) and times each click in the page itself: from the
click's pointerdown to the DOM showing the answer (a MutationObserver, so the time is not the polling's).
``bench.api_journey.ApiJourney`` does it without a browser. Both record into one ``Recorder``.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from playwright.async_api import BrowserContext, Page
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import TimeoutError as PlaywrightTimeout

from app.tabs.gallery import LECTURE_VIEWS, TAB_OF_VIEW
from bench.queue_client import AppConfig
from dgm_core.lecture.presets import PRESETS

ACTIVITIES = ("gallery", "train", "compare", "likelihood", "upload", "reload and continue")
TRAINING = {"train", "continue", "compare", "first step", "compare done"}  # answers that wait for training
STEP = re.compile(r"step \**(\d+)\**\s*/")
RUN = re.compile(r"#(\d+) \S+ on ")
SCORED = re.compile(r"#(\d+) \S+: per-item")
CARD_TAB = {key: "lecture" if p.view in LECTURE_VIEWS else TAB_OF_VIEW[p.view] for key, p in PRESETS.items()}


@dataclass
class Recorder:
    """Everything the journeys measure: click latencies by (source, kind), timeouts, console errors, which
    events each step sent, and the runs each browser listed around the restart."""

    started: float = field(default_factory=time.perf_counter)
    clicks: dict = field(default_factory=lambda: defaultdict(list))
    missed: Counter = field(default_factory=Counter)
    console: list = field(default_factory=list)  # (minute, journey, step, first line)
    sent: dict = field(default_factory=lambda: defaultdict(set))  # (source, step) → the fn indices it sent
    runs: dict = field(default_factory=dict)  # journey → {"before": [...], "after": [...], "token": ...}
    notes: list = field(default_factory=list)  # (minute, journey, kind, what the page showed) for each one missed
    restarting: bool = False  # the server is going away or coming back (pages log errors then)
    slowest: list = field(default_factory=list)  # (seconds, minute, source, kind, journey): the slowest answers

    def click(self, source: str, kind: str, seconds: float | None, journey: str = "", showed: str = "") -> None:
        if seconds is None:
            self.missed[source, kind] += 1
            self.notes.append((round(self.minute(), 2), journey or source, kind, " ".join(showed.split())[:200]))
        else:
            self.clicks[source, kind].append(seconds)
            if "done" not in kind and "reload" not in kind:  # those take long by nature
                self.slowest = sorted([*self.slowest, (seconds, round(self.minute(), 2), source, kind, journey)])[-8:]

    def minute(self) -> float:
        return (time.perf_counter() - self.started) / 60


class Gate:
    """The restart in the middle: journeys stop at their next activity boundary, list their runs, wait, reconnect."""

    def __init__(self, journeys: int) -> None:
        self.requested, self.resumed = asyncio.Event(), asyncio.Event()
        self.waiting, self.back, self.journeys = 0, 0, journeys
        self.all_waiting, self.all_back = asyncio.Event(), asyncio.Event()

    async def boundary(self, journey: Journey) -> None:
        if not self.requested.is_set() or self.resumed.is_set():
            return
        journey.step = "restart: list runs"
        journey.rec.runs[journey.name] = {"before": await journey.list_runs()}
        self.waiting += 1
        if self.waiting == self.journeys:
            self.all_waiting.set()
        await self.resumed.wait()
        journey.step = "after restart"
        try:
            await journey.reconnect()
            journey.rec.runs[journey.name]["after"] = await journey.list_runs()
        except Exception as error:  # counted, and its runs count as lost: nothing lists them
            journey.rec.missed[journey.source, f"reconnect: {type(error).__name__}"] += 1
        journey.rec.runs[journey.name]["token"] = journey.token
        self.back += 1
        if self.back == self.journeys:
            journey.rec.restarting = False
            self.all_back.set()


class Journey:
    """One student: a browser token, an RNG, and the loop over the activities (a subclass does each)."""

    source = ""

    def __init__(self, name: str, url: str, rec: Recorder, gate: Gate, seed: int, workdir: Path) -> None:
        self.name, self.url, self.rec, self.gate = name, url, rec, gate
        self.rng = random.Random(seed)
        self.workdir, self.uploads, self.step = workdir, 0, "open"
        self.token = ""

    async def run(self, until: float) -> None:
        self.step = "open"
        await self.open()
        while time.perf_counter() < until:
            order = list(ACTIVITIES)
            self.rng.shuffle(order)
            for activity in order:
                await self.gate.boundary(self)
                if time.perf_counter() >= until:
                    break
                self.step = activity
                try:
                    await getattr(self, activity.replace(" ", "_"))()
                except Exception as error:  # a step that broke (a timeout, a lost connection): noted, go on
                    self.rec.missed[self.source, f"{activity}: {type(error).__name__}"] += 1
                await self.pause(1, 4)
        await self.gate.boundary(self)  # a journey that ended before the restart still takes part in it

    async def pause(self, low: float, high: float) -> None:
        await asyncio.sleep(self.rng.uniform(low, high))

    def csv(self) -> Path:
        """A small CSV of 2D points (three clusters), named uniquely: its data set's name tells its answer."""
        self.uploads += 1
        path = self.workdir / f"class-{self.name}-{self.uploads}.csv"
        rows = [(self.rng.gauss(c * 3, 1), self.rng.gauss(c % 2 * 3, 1)) for c in range(3) for _ in range(150)]
        path.write_text("x,y\n" + "\n".join(f"{x:.4f},{y:.4f}" for x, y in rows))
        return path

    def card(self) -> str:
        return self.rng.choice(list(PRESETS))


# --- Chromium -------------------------------------------------------------------------------------------------------

HELPERS = """
window.__t = (sel) => document.querySelector(sel)?.textContent || '';
window.__sel = (tab) => document.querySelector('#tab-' + tab + '-button')?.getAttribute('aria-selected') === 'true';
window.__shown = (sel) => { const e = document.querySelector(sel); return !!e && e.offsetParent !== null; };
window.__step = (s) => { const m = s.match(/step (\\d+) \\//); return m ? Number(m[1]) : -1; };
window.__run = (s) => (s.match(/#(\\d+) \\S+ on /) || [])[1] || null;
"""

# Times a click in the page: from its pointerdown (or from now, for actions without a pointer) until each condition
# holds in turn, checked on every DOM change (and every 100 ms).
ARM = """([conds, arg, pointer]) => {
  window.__bench?.stop?.();
  const tests = conds.map((c) => new Function('arg', 'return (' + c + ');'));
  const w = (window.__bench = {start: pointer ? null : performance.now(), ends: tests.map(() => null)});
  if (pointer) document.addEventListener('pointerdown', () => { w.start ??= performance.now(); },
                                         {capture: true, once: true});
  w.check = () => {
    const i = w.ends.indexOf(null);
    if (w.start === null || i < 0) return;
    let ok = false;
    try { ok = tests[i](arg); } catch (e) {}
    if (ok) { w.ends[i] = performance.now(); w.check(); }
  };
  const observer = new MutationObserver(w.check);
  observer.observe(document.body, {subtree: true, childList: true, characterData: true,
                                   attributes: true, attributeFilter: ['aria-selected']});
  const timer = setInterval(w.check, 100);
  w.stop = () => { observer.disconnect(); clearInterval(timer); };
}"""
SHOWED = "(kind) => __t(kind.startsWith('compare') ? '#compare-status' : '#status')"
WAIT = "(n) => { const w = window.__bench; w.check(); return w.ends[n] !== null; }"
TAKEN = "(n) => (window.__bench.ends[n] - window.__bench.start) / 1000"


class BrowserJourney(Journey):
    source = "page"

    def __init__(self, context: BrowserContext, config: AppConfig, *args) -> None:
        super().__init__(*args)
        self.context = context
        self.page: Page | None = None
        (restore,) = [d for d in config.listeners(0, "load") if config.id("browser-token") in d["inputs"]]
        self.after_restore = {d["id"] for d in config.then(restore["id"], True) if d["backend_fn"]}
        self.joined: set[int] = set()
        self.restored = asyncio.Event()  # set when the page sends what follows its restore: the runs are back

    async def open(self) -> None:
        await self.context.add_init_script(HELPERS)
        self.page = await self.context.new_page()
        self.page.on("console", lambda m: m.type == "error" and self._console(m.text))
        self.page.on("pageerror", lambda e: self._console(f"pageerror: {e}"))
        self.page.on("request", self._request)
        self.page.on("framenavigated", lambda frame: frame.parent_frame or setattr(self, "unloading", False))
        await self._loaded("open", lambda: self.page.goto(self.url))

    unloading = False

    def _console(self, text: str) -> None:
        step = "restart" if self.rec.restarting else "reload (old page)" if self.unloading else self.step
        self.rec.console.append((round(self.rec.minute(), 2), self.name, step, text.splitlines()[0][:200]))

    def _request(self, request) -> None:
        if request.method == "POST" and "/queue/join" in request.url:
            fn = (request.post_data_json or {}).get("fn_index")
            self.rec.sent[self.source, self.step].add(fn)
            self.joined.add(fn)
            if self.after_restore <= self.joined:
                self.restored.set()

    async def _loaded(self, kind: str, navigate) -> None:
        """Load the page (``navigate``) and time it until its runs are restored (the restore's answer applied)."""
        self.restored.clear()
        self.joined: set[int] = set()
        started = time.perf_counter()
        for attempt in range(3):  # a navigation can be aborted (e.g. while the server restarts): load it anew
            try:
                await navigate()
                break
            except PlaywrightError as error:
                self.rec.missed[self.source, f"{kind}: {str(error).splitlines()[0][:60]}"] += 1
                navigate = lambda: self.page.goto(self.url)  # noqa: E731
                await asyncio.sleep(1 + attempt)
        try:
            await asyncio.wait_for(self.restored.wait(), 90)
            self.rec.click(self.source, kind, time.perf_counter() - started)
        except TimeoutError:
            self.rec.click(self.source, kind, None)

    async def timed(self, kinds: list[str], conditions: list[str], action, arg=None, pointer=True, timeout=30.0):
        """Arm the page's timer, do ``action``, then wait for each condition in turn; records one latency per
        kind (None: not in time)."""
        await self.page.evaluate(ARM, [conditions, arg, pointer])
        await action()
        taken: list[float | None] = []
        for n, kind in enumerate(kinds):
            try:
                await self.page.wait_for_function(WAIT, arg=n, polling=100, timeout=timeout * 1000)
                taken.append(await self.page.evaluate(TAKEN, n))
            except PlaywrightTimeout:
                taken.append(None)
            showed = "" if taken[-1] is not None else await self.page.evaluate(SHOWED, kind)
            self.rec.click(self.source, kind, taken[-1], self.name, showed)
            if taken[-1] is None:
                break
        await self.page.evaluate("() => window.__bench.stop()")
        return taken

    async def tab(self, tab: str, shown: str) -> None:
        if not await self.page.evaluate("(t) => __sel(t)", tab):
            await self.timed([f"tab {tab}"], [f"__shown({shown!r})"], self.page.locator(f"#tab-{tab}-button").click)

    async def choose(self, dropdown: str, option: str | re.Pattern, kind: str, condition: str, arg=None) -> None:
        await self.page.locator(f"{dropdown} input").click()
        item = self.page.get_by_role("option", name=option, exact=isinstance(option, str)).first
        await self.timed([kind], [condition], item.click, arg)

    async def status(self) -> str:
        return await self.page.evaluate("() => __t('#status')")

    async def gallery(self) -> None:
        key = self.card()
        await self.tab("gallery", f"#open-{key}")
        await self.pause(0.5, 2)
        await self.timed(["open card"], ["__sel(arg)"], self.page.locator(f"#open-{key}").click, CARD_TAB[key])

    async def train_and_stop(self, dataset: str, kind: str) -> None:
        value = await self.page.locator("#dataset input").input_value()
        if value != dataset:
            await self.choose("#dataset", dataset, "data set", "__t('#data-info').includes(arg)", kind)
        await self.page.locator("#steps input").fill("1000000")
        await self.page.locator("#steps input").press("Tab")
        await self.pause(0.5, 2)
        before = RUN.search(await self.status())
        first = ["__run(__t('#status')) !== arg", "__run(__t('#status')) !== arg && __step(__t('#status')) > 0"]
        train = self.page.locator("#train-btn").click
        await self.timed(["train", "first step"], first, train, before and before[1])
        await self.pause(1, 4)
        await self.timed(["stop"], ["/Stopped|Done/.test(__t('#status'))"], self.page.locator("#stop-btn").click)

    async def train(self) -> None:
        await self.tab("train", "#train-btn")
        await self.train_and_stop("digits", "images")
        await self.pause(0.5, 2)
        await self.train_and_stop("moons", "2D points")  # image → 2D: the main figure's known weak spot

    async def compare(self) -> None:
        await self.tab("compare", "#compare-btn")
        await self.page.locator("#compare-budget label", has_text="steps").click()
        await self.page.locator("#compare-amount input").fill("50")
        await self.page.locator("#compare-amount input").press("Tab")
        await self.pause(0.5, 2)
        said = ["__t('#compare-status').includes('Training')", "/Done|Stopped/.test(__t('#compare-status'))"]
        await self.timed(["compare", "compare done"], said, self.page.locator("#compare-btn").click, timeout=180)

    async def likelihood(self) -> None:
        await self.tab("likelihood", "#lik-score")
        await self.page.wait_for_timeout(1500)  # the tab's own event fills the pickers
        scored = SCORED.search(await self.page.evaluate("() => __t('#lik-hist')"))  # the run scored last
        ids = re.findall(r"#(\d+) ", await self.page.locator("#lik-runs").inner_text())  # runs with a likelihood
        ids = [i for i in ids if not scored or i != scored[1]]
        if not ids:
            return
        chosen = self.rng.choice(ids)
        await self.page.locator("#lik-run input").click()
        await self.page.get_by_role("option", name=re.compile(rf"#{chosen} ")).first.click()
        await self.pause(0.5, 2)
        score = self.page.locator("#lik-score").click
        await self.timed(["score items"], ["__t('#lik-hist').includes('#' + arg + ' ')"], score, chosen)

    async def upload(self) -> None:
        await self.tab("train", "#train-btn")
        if not await self.page.evaluate("() => __shown('#data-files')"):
            await self.page.locator("#your-data").get_by_text("Your own data").first.click()
        path = self.csv()
        files = self.page.locator("#data-files input[type=file]")
        await self.timed(
            ["upload a file"],
            ["__t('#data-files').includes(arg)"],
            lambda: files.set_input_files(path),
            path.name,
            pointer=False,
        )
        await self.pause(0.5, 2)
        added = "__t('#data-said').includes('Added ' + arg + '-')"
        await self.timed(["use the file"], [added], self.page.locator("#data-use-files").click, path.stem)

    async def reload(self, kind: str) -> None:
        self.unloading = True  # until the new page commits: what the old one logs as its streams are cut
        await self._loaded(kind, self.page.reload)

    async def reload_and_continue(self) -> None:
        await self.reload("reload")
        await self.pause(1, 3)
        status = await self.status()
        if "Welcome back" not in status:  # nothing of this browser's came back: nothing to continue
            return
        step = int(STEP.search(status)[1]) if STEP.search(status) else -1
        conditions = ["!__t('#status').includes('Welcome back')", "__step(__t('#status')) > arg"]
        await self.timed(["continue", "first step"], conditions, self.page.locator("#continue-btn").click, step)
        await self.pause(1, 3)
        await self.timed(["stop"], ["/Stopped|Done/.test(__t('#status'))"], self.page.locator("#stop-btn").click)

    async def list_runs(self, patience_s: float = 30.0) -> list[int]:
        """The runs the Runs tab's picker lists, read once its table shows a run (the tab's event fills both: right
        after a restart, with every browser reloading, that can take seconds) or ``patience_s`` passed. Not the
        picker before: a dropdown opened while its choices are on their way keeps showing none."""
        await self.page.locator("#tab-runs-button").click()
        cells = self.page.locator("#runs-table tbody tr td:first-child")
        deadline = time.perf_counter() + patience_s
        while not any(text.strip().isdigit() for text in await cells.all_text_contents()):
            if time.perf_counter() > deadline:  # what the page shows then, for whoever looks into it
                picture = Path(__file__).resolve().parent / "output" / f"no-runs-{self.name}.png"
                await self.page.screenshot(path=str(picture), full_page=True)
                said = f"status: {await self.status()}; url: {self.page.url}"
                self.rec.notes.append((round(self.rec.minute(), 2), self.name, "no runs listed", said[:300]))
                return []
            await self.page.wait_for_timeout(1000)
        await self.page.locator("#runs-run input").click()
        options = await self.page.get_by_role("option").all_inner_texts()
        await self.page.keyboard.press("Escape")
        return sorted({int(m[1]) for text in options if (m := RUN.search(text))})

    async def reconnect(self) -> None:
        await self.reload("reload after restart")
        self.token = await self.page.evaluate("() => localStorage.getItem('dgm-playground-token')")
