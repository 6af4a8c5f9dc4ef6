"""The cells of a run's notebook and script (``dgm_core.runs.export``): what each says and the code it runs, made from
the run's ``Replay``."""

from __future__ import annotations

import inspect
import json
import math
from dataclasses import dataclass
from typing import Literal

from dgm_core.models.base import GenerativeModel
from dgm_core.models.registry import FAMILIES, MODELS
from dgm_core.runs.replay import Replay, replay_of
from dgm_core.runs.run import Run

Target = Literal["notebook", "script"]
SAMPLES_BESIDE = {"points2d": " (blue), over test data (grey)", "image": ", 64 of them"}


@dataclass(frozen=True)
class Cell:
    """One cell: Markdown (comments in the script) or code; ``only`` when it belongs in one of the two files (the
    picture of samples: shown by the notebook, saved by the script)."""

    kind: Literal["markdown", "code"]
    source: str
    only: Target | None = None


def cells(run: Run) -> list[Cell]:
    """The notebook's cells in order; the script takes the same ones, but for the last (``Cell.only``)."""
    replay = replay_of(run)
    return [
        Cell("markdown", _introduction(replay)),
        Cell("code", _settings(replay)),
        Cell("markdown", f"## The data\n\n{replay.data.description}"),
        Cell("code", _data(replay)),
        Cell("markdown", _model_math(replay)),
        Cell("code", MODEL_CODE),
        Cell("markdown", EVALUATION_TEXT),
        Cell("code", _evaluation(replay)),
        Cell("markdown", _training_text(replay)),
        Cell("code", _training(replay)),
        Cell("markdown", TEST_TEXT),
        Cell("code", TEST_NLL_CODE if replay.kept_test_nll is not None else _test_mmd(replay)),
        Cell("markdown", f"## Samples\n\nFresh samples from the kept weights{SAMPLES_BESIDE[replay.data.kind]}."),
        Cell("code", _samples(replay)),
        Cell("code", SHOW_PICTURE, only="notebook"),
        Cell("code", SAVE_PICTURE, only="script"),
    ]


def _number(value: float) -> str:
    """A float as Python source that reads back exactly (non-finite ones too)."""
    return repr(value) if math.isfinite(value) else f'float("{value}")'


# --- what each cell says --------------------------------------------------------------------------------------------
def _introduction(replay: Replay) -> str:
    spec = replay.spec
    if replay.caveats:
        claim = "**It reproduces the run only approximately:** " + "; ".join(replay.caveats) + "."
    else:
        claim = (
            "**It reproduces the run exactly:** the same seed gives the same initial weights and the same batches, "
            "the same steps are taken and evaluated, so the same weights are kept and score the same (another CPU "
            "or PyTorch version may round the last digits differently)."
        )
    return f"""\
# {spec.model} on {spec.dataset}, rebuilt with `dgm_core`

Exported from DGM Playground ({replay.where}), as a notebook and as a script with the same code. It rebuilds the run
from its settings: the data, the model, the training loop written out step by step with its evaluations and the weights
it keeps, the kept weights on the test split, and samples.

{claim} Along the way it prints how far it is from the run's own scores.

**To run it:** from the root of the DGM Playground repository (the folder holding `dgm_core/`), install what it needs
once with `pip install -r requirements.txt` (PyTorch's CPU build first, as the README says); then open the notebook in
Jupyter started there, or run the script there with `python`, or put that folder on `PYTHONPATH`, so that
`import dgm_core` works. It runs on the CPU, on one thread."""


def _settings(replay: Replay) -> str:
    spec = replay.spec
    options = ", ".join(f"{json.dumps(name)}: {value!r}" for name, value in spec.options.items())
    scores = ", ".join(f"{step}: {_number(score)}" for step, score in sorted(replay.run_scores.items()))
    if replay.kept_test_nll is None:
        constants, kept = "EVAL_ITEMS, mmd_items", f"RUN_VAL_MMD = {_number(replay.kept_val_mmd)}"
    else:
        constants, kept = "EVAL_CHUNK_VALUES, EVAL_ITEMS, mmd_items", f"RUN_TEST_NLL = {_number(replay.kept_test_nll)}"
    constants += ", TRACKED_ITEMS" if _tracks_bounds(replay) else ""
    steps = f"STEPS = {spec.steps}  # the steps the run was set to take: its cosine spans them\n"
    steps = steps if spec.lr_schedule == "cosine" and not replay.timed_cosine else ""
    return f"""\
import math

import torch

from dgm_core.data import load_dataset
from dgm_core.learn.evaluation import Scores, mmd
from dgm_core.learn.seeding import EVAL_SEED, RandomStream
from dgm_core.learn.training import {constants}
from dgm_core.models.registry import build_model

torch.set_num_threads(1)  # as the playground trains: one thread, the same arithmetic

# the run's settings (its RunSpec)
MODEL = {json.dumps(spec.model)}
DATASET = {json.dumps(spec.dataset)}
HIDDEN = {spec.hidden}  # units per hidden layer
OPTIONS = {{{options}}}  # the model's declared options (a β-VAE's β …)
SEED = {spec.seed}  # the initial weights, and the random stream the batches are drawn from
LR = {spec.lr!r}  # the optimisers' step size
BATCH_SIZE = {spec.batch_size}
{steps}KEEP = {json.dumps(spec.keep)}  # the weights kept: "best" on validation, or the "final" ones
# the steps the run evaluated, each with the validation score it got there (NLL in nats, or MMD² for a model without
# a likelihood), and the kept weights' score on test (validation, without a likelihood)
RUN_SCORES = {{{scores}}}
{kept}"""


def _tracks_bounds(replay: Replay) -> bool:
    """Whether the model tracks other bounds beside its likelihood (a VAE's IWAE), which evaluations score too."""
    return replay.kept_test_nll is not None and type(replay.model).tracked_bounds is not GenerativeModel.tracked_bounds


def _data(replay: Replay) -> str:
    labels = '\ntrain_y, val_y = data.labels["train"], data.labels["val"][:items]  # class labels'
    labels = labels if replay.conditional else ""
    return f"""\
data = load_dataset(DATASET)  # generated from a fixed seed, or shipped: the run's own splits
items = EVAL_ITEMS[data.spec.kind]  # held-out items each evaluation scores, as the playground does
train_x, val_x, test_x = data.train, data.val[:items], data.test[:items]{labels}
print(f"{{len(data.train):,}} training, {{len(data.val):,}} validation and {{len(data.test):,}} test items")"""


def _model_math(replay: Replay) -> str:
    """The registry's description and family, the math of the model's module, and its class's own docstring."""
    info, model = MODELS[replay.spec.model], type(replay.model)
    module = inspect.getmodule(model)
    documented = {"the family's math": module.__doc__ if module else None, f"`{model.__name__}`": model.__doc__}
    parts = [f"## The model: {info.name}", info.description, f"*{FAMILIES[info.family]}*"]
    parts += [f"### From the code: {title}\n\n{inspect.cleandoc(doc)}" for title, doc in documented.items() if doc]
    return "\n\n".join(parts)


MODEL_CODE = """\
model = build_model(MODEL, data.spec, HIDDEN, SEED, **OPTIONS)  # seeded: the run's very first weights
print(f"{type(model).__name__}: {model.num_parameters():,} parameters; likelihood: {model.capabilities.likelihood}")"""

EVALUATION_TEXT = """\
## Evaluation

Each evaluation scores the current weights as the playground's trainer does: the negative log-likelihood −log p(x)
(or the model's bound on it) averaged over the validation and test items and as many training items, in nats per item
(bits/dim = nats / (D ln 2)); other bounds the model tracks; and the squared maximum mean discrepancy MMD² between
samples and validation items, which every family has. What ranks weights is the validation NLL, or MMD² for a model
without a likelihood. Random draws inside (dequantisation noise, a VAE's z, the samples) come from a stream seeded with
`EVAL_SEED`, so the same weights always score the same."""


def _evaluation(replay: Replay) -> str:
    likelihood = ""
    if replay.kept_test_nll is not None:
        likelihood = """
    chunk = max(1, EVAL_CHUNK_VALUES // data.spec.dim)  # items scored at once
    for split, x in (("train", train_x[: len(val_x)]), ("val", val_x), ("test", test_x)):
        total = 0.0
        for part in x.split(chunk):
            with stream:
                total += model.log_prob(part).double().sum().item()
        nll[split] = -total / len(x)"""
    if _tracks_bounds(replay):
        likelihood += """
    tracked = test_x[:TRACKED_ITEMS]
    for part in tracked.split(chunk):
        with stream:
            for name, bound in model.tracked_bounds(part).items():
                bounds[name] = bounds.get(name, 0.0) - bound.double().sum().item() / len(tracked)"""
    labels = ", labels=val_y[:n]" if replay.conditional else ""
    return f'''\
@torch.no_grad()
def evaluate(model, step):
    """The held-out scores of the model's current weights (``Scores``)."""
    model.eval()
    stream = RandomStream(EVAL_SEED)  # the same draws at every evaluation
    nll, bounds = {{}}, {{}}{likelihood}
    n = mmd_items(data.spec.dim, len(val_x))
    with stream:
        samples = model.sample(n{labels})
        val_mmd = mmd(samples.float(), val_x[:n].float())
    return Scores(step, 0.0, data.spec.dim, val_mmd, nll, bounds)'''


def _schedule(replay: Replay) -> tuple[str, str]:
    """The learning-rate schedule: its formula, and the code of its factor."""
    if replay.timed_cosine:
        return (
            "lr_t = lr · ½(1 + cos π min(1, t / T)), T the last step evaluated (the budget's clock, approximated)",
            "0.5 * (1 + math.cos(math.pi * min(1.0, step / max(RUN_SCORES))))  # the budget's cosine, by steps",
        )
    if replay.spec.lr_schedule == "cosine":
        return (
            "lr_t = lr · ½(1 + cos π (t mod S) / S) over the S = `STEPS` steps, restarting past them",
            "0.5 * (1 + math.cos(math.pi * (step % STEPS) / STEPS))  # a cosine to 0 over STEPS steps",
        )
    return "lr_t = lr, constant", "1.0  # constant"


def _training_text(replay: Replay) -> str:
    return f"""\
## Training, written out

The loop of the playground's `Trainer`. Each step draws `BATCH_SIZE` training items at random from the run's own random
stream (seeded with `SEED`; the model draws its training noise inside it too), takes one optimisation step with
`model.train_step` (the model's loss, its gradients, and the optimisers of `configure_optimizers`), then moves the
learning rate on: {_schedule(replay)[0]}. At each step the run evaluated, the weights are scored, and those best on
validation so far (or the latest ones) are kept.

Each evaluation is set beside the run's own score at that step. A run that was stopped (or had finished) and was then
continued went on from the weights it kept, which a straight replay cannot know: the two then part from that step."""


def _training(replay: Replay) -> str:
    factor = _schedule(replay)[1]
    labels = ", labels=train_y[index]" if replay.conditional else ""
    return f'''\
def lr_factor(step):
    """The learning rate after `step` steps, as a fraction of LR."""
    return {factor}


optimizers = model.configure_optimizers(LR)
schedulers = [torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor) for optimizer in optimizers]
batches = RandomStream(SEED)  # the run's own random stream: its batches and the model's training noise
kept_scores, kept_weights = None, None  # the weights kept so far, and their scores
largest_difference = 0.0  # between this replay's validation scores and the run's
last = max(RUN_SCORES)
shown = set(sorted(RUN_SCORES)[:: max(1, len(RUN_SCORES) // 10)]) | {{last}}  # about ten evaluations are printed
for step in range(1, last + 1):
    with batches:
        index = torch.randint(len(train_x), (BATCH_SIZE,))
        model.train()
        losses = model.train_step(train_x[index], optimizers{labels})
    for scheduler in schedulers:
        scheduler.step()
    if step in RUN_SCORES:
        scores = evaluate(model, step)
        largest_difference = max(largest_difference, abs(scores.score - RUN_SCORES[step]))
        better = kept_scores is None or KEEP == "final" or scores.score < kept_scores.score
        if math.isfinite(scores.score) and better:
            kept_scores, kept_weights = scores, {{name: value.clone() for name, value in model.state_dict().items()}}
        if step in shown:
            terms = ", ".join(f"{{name}} {{value.item():.4f}}" for name, value in losses.items())
            print(f"step {{step}}: {{terms}}; validation {{scores.score:.6f}} (the run's: {{RUN_SCORES[step]:.6f}})")
print(f"{{len(RUN_SCORES)}} evaluations; largest difference from the run's scores: {{largest_difference:.1e}}")'''


TEST_TEXT = """\
## The kept weights on the test split

The weights kept (best on validation, or the final ones) are put back and scored once more; the test split never
chose them."""

TEST_NLL_CODE = """\
model.load_state_dict(kept_weights)
scores = evaluate(model, kept_scores.step)
test_nll = scores.nll["test"]
print(f"kept the weights of step {scores.step} ({KEEP}); validation NLL {scores.nll['val']:.6f} nats")
print(f"test NLL: {test_nll:.6f} nats ({scores.bits(test_nll):.4f} bits/dim); the run's: {RUN_TEST_NLL:.6f} nats; "
      f"difference {abs(test_nll - RUN_TEST_NLL):.1e}")
for name, value in scores.bounds.items():
    print(f"{name}: {value:.6f} nats")"""


def _test_mmd(replay: Replay) -> str:
    labels = ', labels=data.labels["test"][:n]' if replay.conditional else ""
    return f"""\
model.load_state_dict(kept_weights)
scores = evaluate(model, kept_scores.step)  # no likelihood: MMD² on validation ranked the weights
n = mmd_items(data.spec.dim, len(test_x))
with torch.no_grad(), RandomStream(EVAL_SEED):
    test_mmd = mmd(model.sample(n{labels}).float(), test_x[:n].float())
print(f"kept the weights of step {{scores.step}} ({{KEEP}})")
print(f"validation MMD²: {{scores.val_mmd:.6e}}; the run's: {{RUN_VAL_MMD:.6e}}; "
      f"difference {{abs(scores.val_mmd - RUN_VAL_MMD):.1e}}")
print(f"test MMD²: {{test_mmd:.6e}} (samples against {{n}} test items)")"""


def _samples(replay: Replay) -> str:
    picture = POINTS_PICTURE if replay.data.kind == "points2d" else IMAGES_PICTURE
    return f"""\
from PIL import Image, ImageDraw

torch.manual_seed(0)
with torch.no_grad():
    samples = model.sample({replay.data.display_samples})
{picture}"""


POINTS_PICTURE = '''\
SIZE = 480  # pixels a side
low, high = test_x.min(0).values, test_x.max(0).values
low, high = low - 0.1 * (high - low), high + 0.1 * (high - low)  # the test data's window, and a margin


def to_pixels(points):
    """The points inside the window, as (column, row) pixels with y up."""
    inside = points[((points >= low) & (points <= high)).all(1)]
    scaled = (inside - low) / (high - low) * (SIZE - 1)
    return [(x, SIZE - 1 - y) for x, y in scaled.tolist()]


picture = Image.new("RGB", (SIZE, SIZE), "white")
draw = ImageDraw.Draw(picture)
for points, colour in ((test_x[:2000], (200, 200, 200)), (samples, (37, 99, 235))):  # test data grey, samples blue
    for x, y in to_pixels(points):
        draw.rectangle([x - 1, y - 1, x + 1, y + 1], fill=colour)'''

IMAGES_PICTURE = """\
side = 8  # an 8 × 8 grid of the first 64 samples, in grey levels 0 … levels − 1, each framed in mid-grey
framed = torch.nn.functional.pad(samples[: side * side, 0], (1, 1, 1, 1), value=(data.spec.levels - 1) / 2)
height, width = framed.shape[1:]
grid = framed.reshape(side, side, height, width).permute(0, 2, 1, 3)
grid = grid.reshape(side * height, side * width) / (data.spec.levels - 1) * 255
picture = Image.fromarray(grid.round().clamp(0, 255).to(torch.uint8).numpy(), "L")
picture = picture.resize((picture.width * 4, picture.height * 4), Image.NEAREST)  # each pixel as 4 × 4"""

SHOW_PICTURE = "picture  # samples of the kept weights"

SAVE_PICTURE = """\
picture.save(f"{MODEL}-{DATASET}-samples.png")
print(f"samples of the kept weights drawn in {MODEL}-{DATASET}-samples.png")"""
