"""Server time per move of the latent explorer's slider: what one drag event costs before the browser redraws.

    python -m bench.bench_latent [--moves 50]

Trains a few models briefly (one thread, as the app does), sets random endpoints, then times ``latent_tab.move``
across the path: for images one decoded item as a picture, for 2D data the path figure with the point at the slider.
Then the same through the served app's API, which adds HTTP, the queue and serialisation; and the CPU time of
``find_latent`` (inverse graphics: the GAN latent that draws one digit), which the Lecture tab runs per click.
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import fields

import torch

from app.page.session import Backend, RunView, Session
from app.tabs import latent as latent_tab
from app.tabs.latent_explorer import LatentState
from dgm_core.runs.run import Run
from dgm_core.runs.spec import RunSpec
from dgm_core.serve.scheduler import Scheduler

LATENT_TAB = latent_tab.LatentView(*(field.name for field in fields(latent_tab.LatentView)))  # outputs by name
CASES = [
    ("moons", "RealNVP"),
    ("moons", "VAE"),
    ("moons", "GAN"),
    ("digits", "VAE"),
    ("digits", "GAN"),
    ("digits", "NSF"),
    ("shapes", "VAE"),
]


def trained(session: Session, dataset: str, model: str, steps: int) -> RunView:
    run = Run(RunSpec(dataset, model, steps, 1e-3, 128, 64), torch.device("cpu"))
    run.start()
    while run.active:
        run.advance(1.0)
    return session.keep(run)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moves", type=int, default=50)
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"{'data':8} {'model':8} {'median ms':>10} {'p90 ms':>8} {'max ms':>8}")
    backend = Backend(torch.device("cpu"), Scheduler(1))
    for dataset, model in CASES:
        session, state = Session(backend), LatentState()
        run = trained(session, dataset, model, args.steps)
        latent_tab.on_run(LATENT_TAB, session, state, run.id)
        latent_tab.move(session, state, run.id, "slerp", 0.0)  # warm-up
        times = []
        for i in range(args.moves):
            start = time.perf_counter()
            latent_tab.move(session, state, run.id, "slerp", i / max(args.moves - 1, 1))
            times.append(1000 * (time.perf_counter() - start))
        times.sort()
        p90 = times[int(0.9 * (len(times) - 1))]
        print(f"{dataset:8} {model:8} {statistics.median(times):10.1f} {p90:8.1f} {times[-1]:8.1f}")
    round_trips(args.moves)
    find_latent_time()


def find_latent_time() -> None:
    """CPU seconds of one ``find_latent`` for one digit under a fresh GAN (its first optimiser step imports lazily,
    ≈ 1.5 s once per process: not counted)."""
    from dgm_core.data import load_dataset
    from dgm_core.inspect.latent_tools import find_latent
    from dgm_core.models.registry import build_model

    model = build_model("GAN", load_dataset("digits").spec)
    x = load_dataset("digits").test[:1]
    find_latent(model, x, steps=1)
    start = time.process_time()
    find_latent(model, x)
    print(f"\nfind_latent, one digit: {time.process_time() - start:.2f} s of CPU (target: well under 1 s)")


def round_trips(moves: int) -> None:
    """The same moves through the served app's API (HTTP, queue, serialisation included), one client session."""
    from gradio_client import Client

    from app.layout import build, launch_options

    demo = build(Backend(torch.device("cpu"), Scheduler(1)))
    demo.launch(server_name="127.0.0.1", server_port=7931, prevent_thread_lock=True, quiet=True, **launch_options())
    try:
        print(f"\nThrough the API (python app + gradio_client on this machine), {moves} moves")
        print(f"{'data':8} {'model':8} {'median ms':>10} {'p90 ms':>8}")
        client = Client("http://127.0.0.1:7931/", verbose=False)
        for run_id, (dataset, model) in enumerate([("moons", "RealNVP"), ("digits", "VAE")], start=1):
            client.predict(dataset, model, 200, 1e-3, 128, 64, 0, 1.0, "best", "constant", 0, api_name="/train")
            client.predict(run_id, "random latents", 0, 1, 0, "slerp", 8, 0.5, None, api_name="/latent_endpoints")
            times = []
            for i in range(moves):
                start = time.perf_counter()
                client.predict(run_id, "slerp", i / max(moves - 1, 1), api_name="/latent_move")
                times.append(1000 * (time.perf_counter() - start))
            times.sort()
            print(f"{dataset:8} {model:8} {statistics.median(times):10.1f} {times[int(0.9 * (moves - 1))]:8.1f}")
    finally:
        demo.close()


if __name__ == "__main__":
    main()
