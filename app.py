"""DGM Playground: start the web UI.

    python app.py [--port 7860] [--host 127.0.0.1] [--device auto|cpu|cuda|mps] [--runs-dir DIR] [--workers N]
                  [--share]

On Hugging Face Spaces the GRADIO_SERVER_NAME / GRADIO_SERVER_PORT variables set the defaults. The page is served
first (about 8 s on a quiet 2-core machine, mostly importing torch and Gradio); the training processes and Lecture 1's
shared runs load behind it, and each step is printed as it happens. SIGTERM or Ctrl-C stops it cleanly: every run
is saved with its current training state (a restart resumes it there) and the training processes end.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import gradio as gr

    from app.page.session import Backend

STARTED = time.perf_counter()


def say(what: str) -> None:
    print(f"[{time.perf_counter() - STARTED:5.1f} s] {what}", flush=True)


def parse_args() -> argparse.Namespace:
    from dgm_core.learn.device import pick_device
    from dgm_core.runs.store import default_root

    parser = argparse.ArgumentParser(description="DGM Playground: train deep generative models in the browser.")
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", 7860)))
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default: auto)")
    parser.add_argument(
        "--runs-dir", type=Path, default=default_root(), help=f"where runs are saved (default: {default_root()})"
    )
    parser.add_argument("--workers", type=int, default=None, help="training processes (default: one per core)")
    parser.add_argument("--share", action="store_true", help="also serve on a temporary public gradio.live link")
    args = parser.parse_args()
    try:
        args.device = pick_device(args.device)
    except ValueError as error:
        parser.error(str(error))
    return args


def main() -> None:
    from dgm_core.serve.memory import limit_arenas

    limit_arenas()  # before any thread starts: see dgm_core.serve.memory
    say("DGM Playground: loading torch and Gradio …")
    from app.layout import build, launch_options
    from app.page.session import Backend, single_thread
    from dgm_core.runs.sharing import SHARES_FILE, Shares
    from dgm_core.runs.store import RunStore
    from dgm_core.serve.memory import release_memory
    from dgm_core.serve.scheduler import Scheduler

    args = parse_args()
    single_thread()
    store = RunStore(args.runs_dir)
    store.on_let_go = release_memory
    # training processes where they can inherit their socket by descriptor (Linux, macOS), started once the page is
    # served (they load torch on the same cores); threads elsewhere
    scheduler = Scheduler(args.workers, processes=os.name == "posix", lazy=True)
    backend = Backend(args.device, scheduler, store, shares=Shares(args.runs_dir / SHARES_FILE))
    say("building the page …")
    demo = build(backend)
    demo.launch(
        server_name=args.host, server_port=args.port, share=args.share, prevent_thread_lock=True, **launch_options()
    )
    trainers = f"{scheduler.workers} {'processes' if scheduler.processes else 'threads'}"
    say(f"serving {demo.local_url} — models train on {args.device} ({trainers}); runs are saved in {args.runs_dir}")
    say("starting the training processes; warming up behind the page …")
    scheduler.start_processes()
    threading.Thread(target=warm_up, args=(backend,), daemon=True, name="warm-up").start()
    interrupt = stop_serving(demo, backend)
    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGINT, interrupt)
    demo.block_thread()  # until SIGINT or SIGTERM
    sys.stdout.flush()
    os._exit(0)  # not a normal exit: daemon threads (the warm-up's, Gradio's) may be inside torch, which aborts then


def stop_serving(demo: gr.Blocks, backend: Backend) -> Callable[[int, object], None]:
    """The handler of SIGTERM and SIGINT (Ctrl-C): save every run first, then let Gradio's loop close the server.

    Saving first, in the signal's own moment, keeps every run however long the server takes to go; and it does not
    take long: open streams (a page watching a run train) are cut at once, where uvicorn would wait for each to end,
    and Gradio for uvicorn up to 5 s — longer than many hosts wait between SIGTERM and SIGKILL. A second signal
    while saving ends the process there."""
    stopping = False

    def interrupt(signum: int, frame: object) -> None:
        nonlocal stopping
        if stopping:
            os._exit(1)
        stopping = True
        shut_down(backend)
        if demo.server is not None:
            demo.server.force_exit = True
            logging.getLogger("uvicorn.error").disabled = True  # else each stream cut prints a CancelledError
        raise KeyboardInterrupt  # Gradio's loop closes the server

    return interrupt


def shut_down(backend: Backend) -> None:
    say("stopping: saving every run …")
    saved = backend.shut_down()
    say(f"stopped: {saved} run{'s' if saved != 1 else ''} saved")


def warm_up(backend: Backend) -> None:
    """One-time costs behind the served page: the first run's (torch's optimizers, the default data), then Lecture
    1's shared runs and the gallery's."""
    from app.tabs.gallery import warm_up as score_gallery_runs
    from app.tabs.lecture import warm_up as open_lecture_runs
    from app.tabs.train import warm_up as build_a_first_run
    from dgm_core.serve.memory import freeze_startup_objects

    build_a_first_run(backend)
    say("warm: a first run was built (the first click trains at once)")
    open_lecture_runs()
    say("warm: Lecture 1's shared runs are open")
    score_gallery_runs(backend.device)
    freeze_startup_objects()
    say("ready: the gallery's runs are scored (Open takes a tenth of a second)")


if __name__ == "__main__":
    main()
