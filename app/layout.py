"""The whole page: a short introduction, the tabs, and an About section. ``build`` makes it; ``launch_options``
gives the theme and style sheet, which Gradio 6 takes at launch."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import gradio as gr
from starlette.middleware import Middleware

from app.how.catalog import build_all as build_how_views
from app.page import image_cache, views
from app.page.following import Boards
from app.page.reconnect import WATCH_SERVER, AliveRoute
from app.page.session import Backend, Session
from app.page.streaming import TrainOutputs, skip_missing_matplotlib, status
from app.page.uploads import UploadGuard
from app.tabs.compare import build_compare_tab
from app.tabs.follow import build_follow_tab, build_share_row, follow_links
from app.tabs.gallery import Views, build_gallery
from app.tabs.latent import build_latent_tab
from app.tabs.lecture import build_lecture_tab
from app.tabs.likelihood import build_likelihood_tab
from app.tabs.real_or_fake import build_real_or_fake_tab
from app.tabs.runs import build_runs_tab
from app.tabs.train import build_train_tab, fill_form, watch_figures
from dgm_core.runs.store import TOKEN

STYLE = Path(__file__).resolve().parent.parent / "assets" / "style.css"

TITLE = "# DGM Playground"
INTRO = """
Train small deep generative models — autoregressive, flows, latent-variable, adversarial, diffusion, energy-based —
on toy 2D densities, 8×8 digits, 28×28 MNIST and 16×16 shapes, and watch them learn: live samples, the model's density,
and honest held-out likelihoods. Then compare families, inspect likelihoods item by item, and walk latent spaces.
"""

ABOUT = """
**What you see while training**

- **Samples** — for 2D data, orange dots ringed in black are fresh samples from the model, grey dots are held-out
  data, and the blue heatmap is the model's log density log p(x) (only for models that have a likelihood). For
  digits, a grid of 64 sampled images.
- **Training loss** — the objective the model minimises on training batches (for likelihood models, nats per
  dimension; a GAN shows both players' losses).
- **Held-out NLL** — the negative log-likelihood of validation and test data in bits per dimension: lower is
  better. Dashed curves marked *(bound)* are upper bounds on the NLL (an ELBO, or a dequantization bound), so the
  true NLL is at most that. The dotted *baseline* is the simplest honest model (one Gaussian for points,
  independent pixels for images); a model should beat it. For 2D data, *data entropy (floor)* is the entropy of
  the process that generated the data: no honest test NLL can go below it.
- **GANs** (and the score-based and energy-based models) have no likelihood: every model is also scored by MMD², a
  two-sample test between its samples and held-out data (lower is better; ≈ 0 and a high p-value: the test cannot
  tell them apart).
- **Stop** halts at once and keeps the weights chosen under *Weights to keep* among those evaluated (every second
  or so of training): the best on validation, or the latest; the status line says which step was kept and by what
  score. **Continue** trains the same model further; **Train** always starts a fresh model. If training diverges
  (the loss becomes NaN), the last good weights are kept.

**The other tabs** work on every model trained in this browser tab (its *runs*): **Compare** trains several
families under one budget and scores all of them by MMD (and by likelihood where they have one); **Likelihood**
overlays the curves of all runs and scores single items, including out-of-distribution ones; **Latent explorer**
walks a model's latent space (flows, VAEs, GANs) and completes partly hidden items (autoregressive models); **Runs**
reopens, deletes, downloads and uploads them.

bits/dim = NLL in nats / (number of dimensions × ln 2). Everything runs on your own server; your runs are kept
there for this browser, and come back after a reload or a server restart.
"""


def build(backend: Backend) -> gr.Blocks:
    """The app's Blocks: pages share ``backend`` (device, scheduler, run store); each has its own ``Session``."""
    image_cache.install()
    skip_missing_matplotlib()
    boards = Boards(backend.shares, backend.store)  # the shared runs' followers' views, drawn once for all
    with gr.Blocks(title="DGM Playground", analytics_enabled=False, delete_cache=(600, 3600)) as demo:
        with gr.Row(elem_id="header", equal_height=True):
            gr.Markdown(TITLE, elem_id="title")
            lecture = gr.Checkbox(
                False,
                label="Lecture view",
                info="Large text for a projector; or open the page with ?lecture=1",
                elem_id="lecture-toggle",
                container=False,
                scale=0,
                min_width=240,
            )
        gr.Markdown(INTRO, elem_id="intro")
        # one Session per page, shared by its tabs: Gradio deep-copies this value on the page's first event (a fresh
        # Session, see Session.__deepcopy__). Not a factory: Gradio runs a factory as a load event of its own, which
        # can finish after `restore` below and replace the session it attached with an empty one.
        session = gr.State(Session(backend))
        token = gr.Textbox("", visible=False, elem_id="browser-token")  # carries the token kept in localStorage
        with gr.Tabs(selected="train", elem_id="main-tabs") as tabs:
            gallery_tab = gr.Tab("Lecture gallery", id="gallery", elem_id="tab-gallery")
            with gr.Tab("Lecture 1", id="lecture", elem_id="tab-lecture") as tab:
                lecture_outputs = build_lecture_tab(tab)
            with gr.Tab("Train", id="train", elem_id="tab-train"):
                train_outputs = build_train_tab(backend, session)
                build_share_row(session)
                build_how_views(session)
            with gr.Tab("Compare", id="compare", elem_id="tab-compare") as tab:
                build_compare_tab(session, tab)
            with gr.Tab("Likelihood", id="likelihood", elem_id="tab-likelihood") as tab:
                likelihood_picker, scored_items = build_likelihood_tab(session, tab)
            with gr.Tab("Real or fake?", id="real-or-fake", elem_id="tab-real-or-fake") as tab:
                build_real_or_fake_tab(session, tab, boards)
            with gr.Tab("Latent explorer", id="latent", elem_id="tab-latent") as tab:
                latent_picker = build_latent_tab(session, tab)
            with gr.Tab("Runs", id="runs", elem_id="tab-runs") as tab:
                build_runs_tab(session, tab, train_outputs)
            with gr.Tab("Follow", id="follow", elem_id="tab-follow"):
                follow_view = build_follow_tab(session, boards)
            with gallery_tab:
                where = Views(tabs, train_outputs, latent_picker, likelihood_picker, scored_items, lecture_outputs)
                build_gallery(session, where)
        with gr.Accordion("About: what am I looking at?", open=False, elem_id="about"):
            gr.Markdown(ABOUT)
        lecture.change(None, lecture, None, js=LECTURE_JS)
        demo.load(None, None, lecture, js=LECTURE_FROM_URL)

        def restore(page: Session, known: str, request: gr.Request) -> dict:
            return restore_runs(page, known, request, token, train_outputs)

        def live_status(page: Session) -> Iterator[Any]:
            if page.current is not None and page.current.run.active:
                yield from status(page.current, backend.scheduler)
            else:
                yield gr.skip()  # a stream that yields nothing would blank the status

        quiet: dict[str, Any] = {"concurrency_limit": None, "show_progress": "hidden", "api_visibility": "private"}
        # one event creates the page's session before any other touches it: Gradio makes a State's first value on
        # first use, and events that start together would each make (and keep) their own
        restored = [token, train_outputs.status, *train_outputs.form]  # the form: the data set picker first
        opened = demo.load(restore, [session, token], restored, js=READ_TOKEN, **quiet)
        opened.then(None, token, None, js=KEEP_TOKEN)
        opened.then(live_status, session, train_outputs.status, **quiet)
        watch_figures(opened, session, train_outputs)
        follow_links(opened, session, tabs, follow_view, boards)
        opened.then(None, None, None, js=PRESET_FROM_URL)
        demo.load(None, None, None, js=WATCH_SERVER)

        def leave(request: gr.Request) -> None:
            backend.closed(request.session_hash)

        demo.unload(leave)
    backend.pages.forget_state = partial(forget_state, demo)
    # Quick events (a tab, a picker, a slider, a view) run for every page at once: an event that names no limit gets
    # none, not Gradio's default of one at a time across the whole server. Streams name theirs (app.page.streaming).
    demo.queue(default_concurrency_limit=None)
    return demo


def forget_state(demo: gr.Blocks, page_id: str) -> None:
    """Drop what Gradio keeps of a page that left (its copy of every component's config, ≈ 0.6 MB here): Gradio
    itself keeps it for its last 10,000 sessions, whether they unloaded or not."""
    holder = getattr(demo, "state_holder", None)  # there once the app is served
    if holder is not None:
        with holder.lock:
            holder.session_data.pop(page_id, None)
            holder.time_last_used.pop(page_id, None)


def restore_runs(session: Session, known: str, request: gr.Request, token: gr.Textbox, outputs: TrainOutputs) -> dict:
    """A page opens: know the browser by the token it keeps (a new one for a new browser), bring back its runs from
    the store, say so, and show the newest on the Train tab (its figures and, if it trains, its status follow)."""
    known = known if isinstance(known, str) and TOKEN.fullmatch(known) else secrets.token_hex(16)
    restored = session.attach(known)
    session.backend.opened(request.session_hash, session)
    shown = {token: known, outputs.form.dataset: gr.update(choices=session.dataset_choices())}
    if not restored:
        return shown
    # the one training, else the newest that trained (not a comparison's model that never started), else the newest
    trained = [v for v in restored if v.run.step > 0] or restored
    view = session.current = next((v for v in reversed(restored) if v.run.active), trained[-1])
    session.opened_spec = view.spec  # the form shows its settings: Train and Continue do what it shows
    interrupted = [f"#{v.id}" for v in restored if v.run.phase == "interrupted"]
    said = f"Welcome back: {len(restored)} run{'s' if len(restored) > 1 else ''} restored (see the Runs tab)."
    if interrupted:
        said += f" Interrupted when the server stopped: {', '.join(interrupted)} — press Continue to resume."
    picker = gr.update(choices=session.dataset_choices(), value=view.spec.dataset)
    return (
        shown
        | fill_form(outputs, view.spec)
        | {outputs.status: said + "  \n" + views.status_markdown(view), outputs.form.dataset: picker}
    )


# ?preset=<key> opens a card of the lecture gallery: a click on its Open button
PRESET_FROM_URL = """() => {
  const key = new URLSearchParams(location.search).get('preset');
  if (!key) return [];
  const tabs = [...document.querySelectorAll('button[role=tab]')];
  tabs.find((b) => b.innerText.trim() === 'Lecture gallery')?.click();  // its cards are drawn once it is shown
  let tries = 50;
  const press = () => {
    const button = document.getElementById('open-' + key);
    const message = document.getElementById('gallery-message');
    if (button) button.click();
    else if (tries-- > 0) setTimeout(press, 100);
    else if (message) message.textContent = 'No card is called "' + key + '": choose one of the cards below.';
  };
  press();
  return [];
}"""

# A browser knows itself by a random token in its localStorage (read before the page's first event, so that a reload
# finds its runs; written back when the server made a new one).
READ_TOKEN = "(session, token) => [session, localStorage.getItem('dgm-playground-token') || '']"
KEEP_TOKEN = "(token) => { localStorage.setItem('dgm-playground-token', token); return []; }"

# The lecture view is a class on <body>: the style sheet enlarges text and hides what a projector does not need, and
# every LivePlot redraws with fonts of at least 16 px.
LECTURE_JS = """(on) => {
  document.body.classList.toggle('lecture', Boolean(on));
  const plots = window.__livePlots || new Set();
  plots.forEach((plot) => (plot.isConnected ? plot.redraw() : plots.delete(plot)));
  return [];
}"""
LECTURE_FROM_URL = "() => new URLSearchParams(window.location.search).get('lecture') === '1'"


# Two things Gradio 6.31 renders that screen readers are told wrong (axe-core: aria-prohibited-attr,
# label-content-name-mismatch), set right whenever they appear: an empty image or file box is a <div> named "Empty
# value" with no role (a name on a plain <div> is not announced: it becomes an image of that name), and an upload
# box is a button named "Click to upload or drop files" while it reads "Drop File Here - or - Click to Upload" (a
# speech user says what is written: its name becomes its text); the footer's icons repeat their buttons' words in
# their alt text (read twice: they become decorative). And the browser's reduced-motion preference
# travels to the server in a cookie, for How it works' Play (app.how.scaffold.play).
A11Y_HEAD = """<script>
(() => {
  const motion = matchMedia('(prefers-reduced-motion: reduce)');
  const remember = () => { document.cookie = `dgm-reduced-motion=${motion.matches ? 1 : 0}; path=/; SameSite=Strict`; };
  remember();
  motion.addEventListener('change', remember);
  const repair = () => {  // on every change of the page, before it is painted: two lookups, well under a millisecond
    const empty = document.querySelectorAll('div[aria-label="Empty value"]:not([role])');
    empty.forEach((box) => box.setAttribute('role', 'img'));
    document.querySelectorAll('.upload-container[aria-label]').forEach((box) => box.removeAttribute('aria-label'));
    document.querySelectorAll('footer img[alt]:not([alt=""])').forEach((icon) => icon.setAttribute('alt', ''));
  };
  const observe = () => new MutationObserver(repair).observe(document.body, {childList: true, subtree: true});
  document.body ? observe() : addEventListener('DOMContentLoaded', observe);
})();
</script>"""

MAX_UPLOAD = "100mb"  # Gradio refuses bigger uploads before they reach the disk (checkpoints are at most 100 MB)


MAX_STREAMS = 1000  # Gradio's queue runs at most this many events at once; each open page holds five (its figures'
# watchers and status line), so 100 would stall every page's clicks once twenty pages are open


def theme() -> gr.themes.Base:
    """The Soft theme with every text colour at WCAG AA contrast (4.5 : 1) on what it is drawn on. Soft's own hint and
    info text (slate 400 on white: 2.6 : 1), labels (blue 500 on blue 100: 3.0 : 1), selected tab and primary buttons
    (white on blue 500: 3.7 : 1) fail it on every page (axe-core, tests/test_browser_accessibility.py); one shade or
    two darker passes, and the page keeps its look."""
    return gr.themes.Soft(primary_hue="blue", neutral_hue="slate").set(
        body_text_color_subdued="*neutral_600",  # hints, info lines, slider ends, the footer: 7.2 : 1
        block_info_text_color="*neutral_600",
        block_label_text_color="*primary_800",  # on its blue 100 badge: 7.2 : 1
        block_title_text_color="*primary_800",
        color_accent="*primary_700",  # the selected tab, upload prompts: 6.4 : 1 on the page's grey
        button_primary_background_fill="*primary_700",  # white on it: 6.7 : 1
        button_primary_background_fill_hover="*primary_800",
        checkbox_label_background_fill_selected="*primary_700",  # a chosen radio or checkbox label, white on it
    )


def launch_options() -> dict[str, Any]:
    """Keyword arguments for ``demo.launch``: theme, style sheet, the page's accessibility repairs (``A11Y_HEAD``),
    upload caps (per file, and per client with unclaimed uploads swept: ``app.page.uploads``), threads for many
    streaming pages, and no per-browser run history (each streamed figure would be stored)."""
    return {
        "theme": theme(),
        "css_paths": [STYLE],
        "head": A11Y_HEAD,
        "run_history": False,
        "max_file_size": MAX_UPLOAD,
        "max_threads": MAX_STREAMS,
        # no client can fill the disk with uploads; pages learn when their server restarted (app.page.reconnect)
        "app_kwargs": {"middleware": [Middleware(UploadGuard), Middleware(AliveRoute)]},
    }
