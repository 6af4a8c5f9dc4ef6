"""The app through its API (gradio_client): streaming, settings that cannot train, divergence, continue, concurrency."""

from __future__ import annotations

import json
import re
import threading
import time

import pytest
from gradio_client import Client

STEP = re.compile(r"step \**(\d+)\** / (\d+)")


def train(
    client: Client,
    dataset: str,
    model: str,
    steps: int,
    lr: float,
    batch: int,
    hidden: int,
    seed: int = 0,
    option: float = 1.0,
    keep: str = "best",
    schedule: str = "constant",
    seconds: float = 0,
):
    """Start training through the API; ``option`` sets the model's declared option (e.g. β), if it has one;
    ``seconds`` > 0 is a time budget."""
    return client.submit(
        dataset, model, steps, lr, batch, hidden, seed, option, keep, schedule, seconds, api_name="/train"
    )


def step_of(status: str) -> tuple[int, int]:
    match = STEP.search(status)
    assert match, f"no step count in status: {status!r}"
    return int(match[1]), int(match[2])


def plot_json(output: str | dict) -> dict:
    """A LivePlot output (or an update carrying one) as the plotly figure's JSON."""
    return json.loads(output["value"] if isinstance(output, dict) else output)


def figures(client: Client) -> tuple:
    """(loss, NLL, samples) of the session's current run, drawn now."""
    return client.predict(api_name="/figures")


@pytest.fixture()
def client(app_url: str) -> Client:
    return Client(app_url, verbose=False)


@pytest.mark.slow
def test_training_streams_then_reports_final_scores(client: Client) -> None:
    job = train(client, "moons", "RealNVP", 150, 5e-3, 256, 64)
    statuses = list(job)
    final = job.result()
    assert len(set(statuses)) >= 3, statuses
    assert step_of(final) == (150, 150)
    assert "Done" in final and "Kept the weights of step" in final
    assert "nats" in final and "bits/dim" in final and "exact" in final
    assert "baseline (single Gaussian)" in final and "data entropy (floor)" in final
    _, nll, samples = figures(client)
    nll = plot_json(nll)
    assert {trace["name"] for trace in nll["data"]} == {"val", "test"}
    labels = [annotation["text"] for annotation in nll["layout"]["annotations"]]
    assert "data entropy (floor)" in labels and "baseline: single Gaussian" in labels
    samples = plot_json(samples)
    names = [trace.get("name") for trace in samples["data"]]
    assert names == ["model log density", "data", "model samples"]


@pytest.mark.parametrize(
    ("lr", "batch", "hidden", "steps", "expected"),
    [
        (0.0, 64, 64, 50, "learning rate"),
        (1e-3, 1, 64, 50, "batch size"),
        (1e-3, 64, 2, 50, "hidden width"),
        (1e-3, 64, 64, 0, "Steps"),
    ],
)
def test_settings_that_cannot_train_get_a_clear_message(
    client: Client, lr: float, batch: int, hidden: int, steps: int, expected: str
) -> None:
    status = train(client, "moons", "RealNVP", steps, lr, batch, hidden).result()
    assert status.startswith("**Cannot train:**") and expected in status, status


def test_divergence_is_reported_and_the_model_kept(client: Client) -> None:
    status = train(client, "moons", "RealNVP", 300, 1.0, 256, 64).result()
    assert "Diverged" in status and "last good weights were restored" in status, status
    assert step_of(status)[0] < 300


def test_bound_and_missing_likelihood_are_labelled(client: Client) -> None:
    vae = train(client, "digits", "VAE", 60, 1e-3, 64, 64).result()
    assert "bound: ELBO" in vae, vae
    _, nll, picture = figures(client)
    nll = plot_json(nll)
    assert {trace["name"] for trace in nll["data"]} == {"val (bound)", "test (bound)", "test, IWAE (k=64) bound"}
    assert all(trace["line"]["dash"] == "dash" for trace in nll["data"])
    picture = plot_json(picture)  # the samples: one picture in the figure, titled with the weights they come from
    assert len(picture["layout"]["images"]) == 1 and picture["layout"]["title"]["text"].endswith("8×8 images")
    gan = train(client, "moons", "GAN", 60, 1e-3, 128, 64).result()
    assert "No likelihood — compare by MMD" in gan, gan
    loss, nll, _ = figures(client)
    assert [trace["name"] for trace in plot_json(nll)["data"]] == ["val MMD²"]
    assert {trace["name"] for trace in plot_json(loss)["data"]} == {"discriminator", "generator"}


def test_continue_trains_the_same_model_further(client: Client) -> None:
    assert "Nothing to continue" in client.submit(50, api_name="/continue_training").result()
    assert step_of(train(client, "moons", "MADE", 80, 3e-3, 256, 64).result()) == (80, 80)
    status = client.submit(40, api_name="/continue_training").result()
    assert step_of(status) == (120, 120), status


def test_a_time_budget_ends_the_run_after_that_much_training(client: Client) -> None:
    final = train(client, "moons", "RealNVP", 1_000_000, 1e-3, 256, 32, schedule="cosine", seconds=1).result()
    assert "Done" in final and 10 < step_of(final)[0] < 1_000_000 and "1.0 of 1 s of training" in final, final


def test_stop_keeps_the_best_weights_and_ends_the_stream(client: Client) -> None:
    job = train(client, "moons", "RealNVP", 5000, 5e-3, 256, 64)
    for output in job:
        if step_of(output)[0] >= 30:
            break
    answer = client.submit(api_name="/stop").result()  # evaluated weights exist (the first step's): ends at once
    assert "**Stopped**" in answer and "Kept the weights of step" in answer, answer
    final = job.result(timeout=10)
    assert "Stopped at step" in final and "Kept the weights of step" in final and step_of(final)[0] < 5000, final


@pytest.mark.slow
def test_two_visitors_train_at_the_same_time(app_url: str) -> None:
    """Each client is its own session; the second must not wait in the queue behind the first."""
    first_update: dict[str, float] = {}
    finished: dict[str, float] = {}

    def visit(name: str) -> None:
        job = train(Client(app_url, verbose=False), "moons", "RealNVP", 150, 5e-3, 256, 64, seed=len(name))
        for _ in job:
            first_update.setdefault(name, time.perf_counter())
        assert step_of(job.result()) == (150, 150)
        finished[name] = time.perf_counter()

    threads = [threading.Thread(target=visit, args=(name,)) for name in ("a", "bb")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert set(finished) == {"a", "bb"}
    assert max(first_update.values()) < min(finished.values()), (first_update, finished)


def test_a_model_option_reaches_the_model(client: Client) -> None:
    """The β slider's value builds the β-VAE; a model without options ignores the slider."""
    status = train(client, "digits", "β-VAE", 20, 1e-3, 64, 32, option=8.0).result()
    assert "Done" in status and "beta = 8" in status
    assert "beta" not in train(client, "digits", "VAE", 5, 1e-3, 64, 32, option=8.0).result()
    refused = train(client, "digits", "β-VAE", 5, 1e-3, 64, 32, option=99.0).result()
    assert "Cannot train" in refused and "between 0 and 16" in refused


def test_a_closed_pages_figure_streams_end_and_give_their_queue_slots_back() -> None:
    import asyncio

    import torch

    from app.page.session import Backend, Session
    from app.page.streaming import FIGURES, watch
    from dgm_core.serve.scheduler import Scheduler

    page = Session(Backend(torch.device("cpu"), Scheduler(1)))

    async def open_then_close() -> None:
        streams = [asyncio.create_task(_drain(watch(page, figure))) for figure in FIGURES.values()]
        await asyncio.sleep(0.5)
        assert not any(stream.done() for stream in streams)  # open: they watch for as long as the page is there
        page.close()
        await asyncio.wait_for(asyncio.gather(*streams), timeout=2)

    asyncio.run(open_then_close())


async def _drain(stream) -> None:
    async for _ in stream:
        pass
