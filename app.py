"""DGM Playground: start the web UI.

    python app.py [--port 7860] [--host 127.0.0.1] [--device auto|cpu|cuda|mps] [--runs-dir DIR] [--workers N]
                  [--share]

On Hugging Face Spaces the GRADIO_SERVER_NAME / GRADIO_SERVER_PORT variables set the defaults.
"""

from __future__ import annotations

import argparse
import os
import threading
from pathlib import Path

from app.layout import build, launch_options
from app.lecture_tab import warm_up
from app.session import Backend, single_thread
from dgm_core.device import pick_device
from dgm_core.memory import release_memory
from dgm_core.scheduler import Scheduler
from dgm_core.store import RunStore, default_root


def parse_args() -> argparse.Namespace:
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
    args = parse_args()
    single_thread()
    store = RunStore(args.runs_dir)
    store.on_let_go = release_memory
    # training processes where they can inherit their socket by descriptor (Linux, macOS); threads elsewhere
    backend = Backend(args.device, Scheduler(args.workers, processes=os.name == "posix"), store)
    trainers = f"{backend.scheduler.workers} {'processes' if backend.scheduler.processes else 'threads'}"
    print(f"DGM Playground: models train on {args.device} ({trainers}); runs are saved in {args.runs_dir}")
    threading.Thread(target=warm_up, daemon=True, name="lecture-warm-up").start()
    build(backend).launch(server_name=args.host, server_port=args.port, share=args.share, **launch_options())


if __name__ == "__main__":
    main()
