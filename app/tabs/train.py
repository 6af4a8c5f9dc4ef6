"""The Train tab: pick data and a model, set a few hyperparameters, and watch training live."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from typing import Any

import gradio as gr

from app.draw import figures
from app.draw.live_plot import LivePlot
from app.page import views
from app.page.downloads import CODE, write_code
from app.page.inputs import parse_spec, seconds_budget, whole
from app.page.session import Backend, Session
from app.page.streaming import FIGURES, STREAMING, TrainForm, TrainOutputs, current_figures, status, watch
from app.tabs.your_data import build_your_data
from dgm_core.data import dataset_names, load_dataset
from dgm_core.models.registry import FAMILIES, MODELS, defaults_for, models_by_family, models_for
from dgm_core.runs.export import ExportError
from dgm_core.runs.run import Run
from dgm_core.runs.spec import RunSpec

DEFAULT_DATASET = "moons"
DEFAULT_MODEL = "RealNVP"


def model_choices(dataset: str | None = None) -> list[tuple[str, str]]:
    """("RealNVP (flow)", "RealNVP"), grouped by family in the registry's order: every model, or those that work on
    ``dataset``."""
    usable = set(MODELS) if dataset is None else set(models_for(load_dataset(dataset)))
    return [
        (f"{name} ({family})", name) for family, names in models_by_family().items() for name in names if name in usable
    ]


def model_card(name: str) -> str:
    info = MODELS[name]
    return f"**{info.name}** — {info.description}\n\n*{FAMILIES[info.family]}*"


def data_card(name: str) -> str:
    spec = load_dataset(name).spec
    shape = "×".join(str(s) for s in spec.shape)
    kind = "2D points" if spec.kind == "points2d" else f"images {shape}, {spec.levels} levels"
    return f"{spec.description} *({kind})*"


def defaults(dataset: str, model: str) -> tuple[int, float, int, int, str]:
    """Steps, learning rate, batch size, hidden width and schedule recommended for this model on this kind of
    data."""
    values = defaults_for(model, load_dataset(dataset).spec)
    return values.steps, values.lr, values.batch_size, values.hidden, values.schedule


def warm_up(backend: Backend) -> None:
    """Pay one-time costs at startup (``app.py`` calls it once the page is served) instead of on the first click:
    torch imports torch._dynamo (~2–3 s) when the first optimizer is made, counting a step's cost warms torch's
    dispatcher, and data sets load on first use."""
    Run(RunSpec.defaults(DEFAULT_MODEL, DEFAULT_DATASET), backend.device)


def build_train_tab(backend: Backend, session: gr.State) -> TrainOutputs:
    """Lay out the tab's components and wire its events (inside a gr.Blocks context); returns the components that
    draw a run, so that another tab can open a run here."""
    steps0, lr0, batch0, hidden0, schedule0 = defaults(DEFAULT_DATASET, DEFAULT_MODEL)
    with gr.Row(equal_height=False):
        with gr.Column(scale=1, min_width=320):
            dataset = gr.Dropdown(dataset_names(), value=DEFAULT_DATASET, label="Data set", elem_id="dataset")
            data_info = gr.Markdown(data_card(DEFAULT_DATASET), elem_id="data-info", elem_classes="card")
            build_your_data(session, dataset)
            model = gr.Dropdown(  # a run opened from elsewhere sets model and choices at once: Gradio may check the
                model_choices(DEFAULT_DATASET),  # value against the old choices first (Train checks it by itself)
                value=DEFAULT_MODEL,
                label="Model (family)",
                elem_id="model",
                allow_custom_value=True,
            )
            model_info = gr.Markdown(model_card(DEFAULT_MODEL), elem_id="model-info", elem_classes="card")
            with gr.Row(elem_id="train-buttons"):
                train_btn = gr.Button("Train", variant="primary", elem_id="train-btn", min_width=80)
                stop_btn = gr.Button("Stop", variant="stop", elem_id="stop-btn", min_width=80)
                continue_btn = gr.Button("Continue", elem_id="continue-btn", min_width=80)
            gr.Markdown(
                "*Train* starts a fresh model · *Stop* halts at once and keeps the evaluated weights chosen "
                "below · *Continue* trains the same model further.",
                elem_classes="hint",
            )
            with gr.Accordion("Hyperparameters", open=True):
                with gr.Row():
                    steps = gr.Number(
                        steps0,
                        label="Steps",
                        precision=0,
                        step=100,
                        elem_id="steps",
                        info="1–1,000,000. Continue adds this many more.",
                    )
                    lr = gr.Number(
                        lr0, label="Learning rate", step=1e-4, elem_id="lr", info="Adam step size, in (0, 1]; try 1e-3."
                    )
                with gr.Row():
                    batch_size = gr.Number(
                        batch0,
                        label="Batch size",
                        precision=0,
                        step=32,
                        elem_id="batch-size",
                        info="Items per step, 2–65,536.",
                    )
                    hidden = gr.Number(
                        hidden0,
                        label="Hidden width",
                        precision=0,
                        step=32,
                        elem_id="hidden",
                        info="Units per hidden layer, 4–4,096.",
                    )
                seed = gr.Number(
                    0, label="Seed", precision=0, elem_id="seed", info="Same seed, same settings: the same run."
                )
                with gr.Row():
                    schedule = gr.Radio(
                        [("constant", "constant"), ("cosine to 0", "cosine")],
                        value=schedule0,
                        label="Schedule",
                        elem_id="schedule",
                        info="Cosine: from the rate above down to 0 over the steps, or over the time budget.",
                    )
                    seconds = gr.Number(
                        0,
                        label="Time budget (s)",
                        elem_id="seconds",
                        info="Stop after this much training time (evaluation not counted); 0: no limit.",
                    )
                option = gr.Slider(**option_settings(DEFAULT_DATASET, DEFAULT_MODEL), elem_id="model-option")
                keep = gr.Radio(
                    [("best on validation", "best"), ("final weights", "final")],
                    value="best",
                    label="Weights to keep",
                    elem_id="keep",
                    info="Best on validation: the evaluated weights with the lowest validation NLL (MMD² without a "
                    "likelihood). Final: the latest evaluated weights.",
                )
            with gr.Row(elem_id="train-code"):  # this run as code, to train again outside the playground
                code_buttons = {
                    kind: gr.Button(f"Download {kind}", size="sm", elem_id=f"train-{kind}", min_width=80)
                    for kind in CODE
                }
            code_file = gr.File(label="This run as code", visible=False, interactive=False, elem_id="train-code-file")
        with gr.Column(scale=2, min_width=480):
            status = gr.Markdown("Press **Train** to start.", label="Status", elem_id="status", elem_classes="status")
            samples = LivePlot(
                views.data_preview(load_dataset(DEFAULT_DATASET)),
                height=figures.SAMPLE_HEIGHT,
                label="Samples",
                show_label=False,
                elem_id="samples-plot",
            )
            with gr.Row():
                loss_plot = LivePlot(
                    views.empty_curves("the training loss appears here")[0],
                    label="Training loss",
                    show_label=False,
                    elem_id="loss-plot",
                )
                nll_plot = LivePlot(
                    views.empty_curves("held-out scores appear here")[1],
                    label="Held-out NLL",
                    show_label=False,
                    elem_id="nll-plot",
                )

    hyper = [steps, lr, batch_size, hidden]
    form = TrainForm(dataset, model, *hyper, seed, option, keep, schedule)
    outputs = TrainOutputs(status, loss_plot, nll_plot, samples, form, data_info, model_info)
    quiet: dict[str, Any] = {"show_progress": "hidden", "api_visibility": "private", "concurrency_limit": None}
    chosen, recommended = [dataset, model, session], [*hyper, schedule, option]  # what a model's defaults fill in
    dataset.change(partial(on_dataset, outputs), chosen, [model, *recommended, data_info, samples], **quiet)
    model.change(partial(on_model, outputs), chosen, [*recommended, model_info], **quiet)

    def start(
        dataset_: Any,
        model_: Any,
        steps_: Any,
        lr_: Any,
        batch_: Any,
        hidden_: Any,
        seed_: Any,
        option_: Any,
        keep_: Any,
        schedule_: Any,
        seconds_: Any,
        page: Session,
        request: gr.Request,
    ) -> Iterator[str]:
        backend.opened(request.session_hash, page)
        fields = (dataset_, model_, steps_, lr_, batch_, hidden_, seed_, option_, keep_, schedule_)
        yield from start_training(page, *fields, seconds=seconds_)

    def more(steps_more: Any, page: Session, request: gr.Request) -> Iterator[str]:
        backend.opened(request.session_hash, page)
        yield from continue_training(page, steps_more)

    train_inputs = [dataset, model, *hyper, seed, option, keep, schedule, seconds, session]
    train_btn.click(start, train_inputs, status, api_name="train", **STREAMING)
    continue_btn.click(more, [steps, session], status, api_name="continue_training", **STREAMING)
    # No cancels=: the status stream sees the run stop and writes the stopped state itself.
    stop_btn.click(stop_training, session, status, api_name="stop", show_progress="hidden", concurrency_limit=None)
    for kind, button in code_buttons.items():
        button.click(partial(download_current, kind), session, code_file, api_name=f"download_{kind}")
    # for API clients, who see no page: every figure of the current run, drawn now
    drawn = [outputs.loss, outputs.nll, outputs.samples]
    gr.Button(visible=False).click(lambda page: current_figures(page, outputs), session, drawn, api_name="figures")
    return outputs


def watch_figures(opened: Any, session: gr.State, outputs: TrainOutputs) -> None:
    """Once a page has opened (the ``opened`` event: its session exists by then, so that every watcher gets the
    same one), start one watcher per figure of the Train tab (see ``app.page.streaming``)."""
    for name, figure in FIGURES.items():

        async def watcher(page: Session, figure=figure):  # noqa: ANN202 (an async generator of updates)
            async for update in watch(page, figure):
                yield update

        opened.then(
            watcher,
            session,
            getattr(outputs, name),
            show_progress="hidden",
            api_visibility="private",
            concurrency_limit=None,
        )


def fill_form(outputs: TrainOutputs, spec: RunSpec) -> dict:
    """The Train form showing ``spec``'s settings (a run opened from elsewhere: Train and Continue then do what the
    form shows), the model picker offering the models of the spec's data."""
    form = outputs.form
    option = next(iter(spec.options.values()), None)
    return {
        form.dataset: spec.dataset,
        form.model: gr.update(choices=model_choices(spec.dataset), value=spec.model),
        **_settings(form, spec.dataset, spec.model, spec),
        form.seed: spec.seed,
        form.keep: spec.keep,
        **({} if option is None else {form.option: option}),
    }


def on_dataset(outputs: TrainOutputs, dataset: str, model: str, page: Session | None = None) -> dict:
    """New data: its preview, the models that work on it (keeping the chosen one if it does), their defaults — or,
    when the page just opened a run on this data, that run's model and settings (``Session.opened_spec``)."""
    choices = model_choices(dataset)
    usable = [name for _, name in choices]
    opened = _opened(page, dataset)
    if opened is not None:
        model = opened.model
    elif model not in usable:
        model = DEFAULT_MODEL if DEFAULT_MODEL in usable else usable[0]
    form = outputs.form
    return {
        form.model: gr.update(choices=choices, value=model),
        **_settings(form, dataset, model, opened),
        form.option: gr.update(**option_settings(dataset, model, opened)),
        outputs.data_info: data_card(dataset),
        outputs.samples: views.data_preview(load_dataset(dataset)),
    }


def on_model(outputs: TrainOutputs, dataset: str, model: str, page: Session | None = None) -> dict:
    """Another model: its card, and its recommended settings (an opened run's, while the form shows that run)."""
    if model not in models_for(load_dataset(dataset)):  # the data set just changed; its own event picks a model
        return {outputs.model_info: model_card(model)}
    form, opened = outputs.form, _opened(page, dataset, model)
    return {
        **_settings(form, dataset, model, opened),
        form.option: gr.update(**option_settings(dataset, model, opened)),
        outputs.model_info: model_card(model),
    }


def _opened(page: Session | None, dataset: str, model: str | None = None) -> RunSpec | None:
    """The spec of the run the page just opened, if the form now shows its data set (and model)."""
    spec = None if page is None else page.opened_spec
    if spec is not None and spec.dataset != dataset and page is not None:
        page.opened_spec = None  # the user chose other data: the form's defaults from now on
    return spec if spec is not None and spec.dataset == dataset and model in (None, spec.model) else None


def _settings(form: TrainForm, dataset: str, model: str, opened: RunSpec | None) -> dict:
    """Steps, learning rate, batch size, hidden width and schedule: an opened run's, or the recommended ones."""
    if opened is None:
        values = defaults(dataset, model)
    else:
        values = opened.steps, opened.lr, opened.batch_size, opened.hidden, opened.lr_schedule
    return dict(zip((form.steps, form.lr, form.batch_size, form.hidden, form.schedule), values, strict=True))


def option_settings(dataset: str, model: str, opened: RunSpec | None = None) -> dict[str, Any]:
    """The slider for the model's first declared option (e.g. a β-VAE's β), hidden for models without one; at an
    opened run's value, else at the model's default for this kind of data."""
    options = MODELS[model].options
    if not options:
        return {"visible": False}
    name, option = next(iter(options.items()))
    value = opened.options.get(name) if opened is not None else None
    return {
        "visible": True,
        "label": option.label,
        "minimum": option.minimum,
        "maximum": option.maximum,
        "step": option.step,
        "value": option.defaults[load_dataset(dataset).spec.kind] if value is None else value,
        "info": option.info,
    }


def start_training(session: Session, *fields: Any, seconds: Any = 0) -> Iterator[str]:
    """Train a fresh model with the settings in ``fields`` (data set, model, steps, learning rate, batch size,
    hidden width, seed, option, weights to keep, schedule), for at most ``seconds`` of training when not 0; stream
    the status line while the scheduler trains it."""
    if not session.can_use(str(fields[0])):
        yield refuse("Choose a data set from the list: built-in, or your own.")
        return
    try:
        spec = parse_spec(*fields)
        budget = seconds_budget(seconds)
    except ValueError as error:
        yield refuse(str(error))
        return
    yield from train_spec(session, spec, budget)


def train_spec(session: Session, spec: RunSpec, seconds: float | None = None) -> Iterator[str]:
    """Train a fresh model with ``spec`` as the Train tab's run (for at most ``seconds`` of training when given);
    stream its status line while the scheduler trains it."""
    try:
        session.check_room()
        run = Run(spec, session.backend.device)
    except ValueError as error:
        yield refuse(str(error))
        return
    with session.lock:
        if session.current is not None and session.current.run.active:
            session.current.run.abandon()  # the tab's previous run ends, keeping its evaluated weights
        view = session.current = session.keep(run)
        run.start(max_seconds=seconds)
    session.backend.scheduler.submit(run)
    yield from status(view, session.backend.scheduler)


def continue_training(session: Session, steps: Any) -> Iterator[str]:
    """Train this tab's model ``steps`` more steps (after Stop, after it finished, or after a divergence)."""
    view = session.current
    if view is None:
        yield refuse("Nothing to continue yet: press Train first.")
        return
    try:
        if not view.run.active:
            session.check_room()
        view.run.start(whole(steps, "Steps"))
    except ValueError as error:
        yield refuse(str(error))
        return
    session.backend.scheduler.submit(view.run)
    yield from status(view, session.backend.scheduler)


def stop_training(session: Session) -> str:
    """Ask this tab's run to stop: it halts at its next step and keeps the chosen evaluated weights."""
    view = session.current
    if view is None:
        return "Nothing to stop: press **Train** to start."
    view.run.stop()
    session.backend.scheduler.hurry(view.run)
    return views.status_markdown(view)


def refuse(message: str) -> str:
    """A setting that cannot train: a warning toast and the reason in the status line."""
    gr.Warning(views.toast_text(message))
    return f"**Cannot train:** {views.plain(message)}"


def download_current(kind: str, session: Session) -> dict:
    """This tab's run as a notebook or a script to download; a toast says why not."""
    if session.current is None:
        gr.Warning("Nothing to download yet: press Train first.")
        return views.shown_file(None)
    try:
        return views.shown_file(str(write_code(session.current, kind)))
    except ExportError as error:
        gr.Warning(views.toast_text(error))
        return views.shown_file(None)
