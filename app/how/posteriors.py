"""How it works for a latent-variable model with a 2-D latent (a VAE on 2D points): the encoder's posteriors.

Left, the latent plane: the prior (N(0, I), or each Gaussian of a mixture prior) as ellipses at 1σ and 2σ, the
aggregate posterior (the means μ(x) of test items, grey), and q(z | x) = N(μ, diag σ²) of a few test items as
ellipses at 2σ. Right, the data plane: those items, their reconstructions E[x | z = μ(x)], and the decoder's means
for draws z ~ q(z | x) of the first item. A table gives each item's KL(q(z|x) ‖ p(z)) against the model's own prior,
the price the ELBO pays for what the code says about x: posteriors that sit on the prior (KL ≈ 0) carry nothing —
posterior collapse.

For images (a VAE on digits or shapes, any latent size) each row is a test item, its reconstruction and the decoder's
means for six draws z ~ q(z | x): how much the code pins the item down. The table gives each item's KL and mean σ,
and the note counts the active latent dimensions, those whose posterior mean varies across items (Var_x E_q[z_u]
> 0.01, Burda et al., 2016): the others have collapsed onto the prior.
"""

from __future__ import annotations

import gradio as gr
import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from app.draw.figures import DATA_COLOR, PALETTE, SAMPLE_HEIGHT, TEMPLATE, image_grid
from app.draw.live_plot import LivePlot
from app.how.scaffold import QUIET, HowView, accordion
from app.page.session import RunView, Session
from dgm_core.models.abilities import Posterior, ability

ITEMS = 6  # test items whose posteriors are drawn
AGGREGATE = 1000  # test items whose means show the aggregate posterior
DRAWS = 200  # posterior draws of the first item, decoded
IMAGE_DRAWS = 6  # posterior draws decoded per image item
ACTIVE = 0.01  # a latent dimension is active when its posterior mean varies more than this across items
CIRCLE = np.linspace(0, 2 * np.pi, 73)
POINT_HEADERS = ["item", "μ₁", "μ₂", "σ₁", "σ₂", "KL(q‖p) nats"]  # the table's columns for a 2-D latent…
IMAGE_HEADERS = ["item", "KL(q‖p) nats", "mean σ", "dimensions with σ < 0.5"]  # …and for images


HOW = HowView(
    key="post",
    title="a VAE's posteriors q(z | x)",
    intro="For a VAE on 2D points (its latent is 2-D): press **Show the posteriors** to see where the encoder puts "
    "test items in the latent plane, against the prior.",
    fits=lambda view: (
        view.capabilities.posterior and (view.data_spec.kind == "image" or view.capabilities.latent_dim == 2)
    ),
    unfit="Train or open a **VAE (or β-VAE, IWAE)** first, on images or on 2D points (its latent plane is 2-D).",
    accordion_id="how-posteriors",
)


def build(session: gr.State) -> None:
    """The view under the Train tab's figures (``app.how.catalog``)."""
    with accordion(HOW) as frame:
        show = gr.Button("Show the posteriors", variant="primary", elem_id="post-show")
        with gr.Row():
            plot = LivePlot(None, height=SAMPLE_HEIGHT, show_label=False, elem_id="post-plot")
            table = gr.Dataframe(
                headers=POINT_HEADERS,
                value=[],
                interactive=False,
                label="Each item's posterior and what it costs the ELBO",
                elem_id="post-table",
            )
    show.click(show_posteriors, session, [frame.note, plot, table], **QUIET)


def show_posteriors(page: Session) -> tuple:
    view = HOW.current(page)
    if view is None:
        return HOW.unfit, gr.skip(), gr.skip()
    if view.data_spec.kind == "image":
        return image_posteriors(view)
    items = view.data.test[:ITEMS]
    with view.run.inspecting(seed=0) as model:
        device = view.device
        encoder = ability(model, Posterior)
        mean, std = (t.cpu() for t in encoder.posterior(items.to(device)))
        aggregate = encoder.posterior(view.data.test[:AGGREGATE].to(device))[0].cpu()
        reconstructions = model.decode(mean.to(device)).cpu()
        draws = mean[:1] + std[:1] * torch.randn(DRAWS, 2)
        decoded = model.decode(draws.to(device)).cpu()
        kl = encoder.posterior_kl(items.to(device)).cpu()
        prior = prior_gaussians(encoder)
    rows = [
        [f"#{i + 1}", *(round(float(v), 2) for v in (*mean[i], *std[i])), round(float(kl[i]), 3)] for i in range(ITEMS)
    ]
    said = (
        f"{view.title}: mean KL(q‖p) of these items {float(kl.mean()):.2f} nats. Ellipses far from the prior's "
        "and smaller than them: the code tells the decoder where x is; ellipses that fill the prior's: it "
        "tells nothing."
    )
    figure = posterior_figure(
        view,
        prior,
        items.numpy(),
        mean.numpy(),
        std.numpy(),
        aggregate.numpy(),
        reconstructions.numpy(),
        decoded.numpy(),
    )
    table = gr.Dataframe(headers=POINT_HEADERS, value=rows)  # headers too: the last run shown may have been on images
    return said, figure, table


def _ellipses(mean: np.ndarray, half_axes: np.ndarray) -> np.ndarray:
    """The outlines of K axis-aligned ellipses (centres and half-axes (K, 2)) as one path, (K · 74, 2): each closed
    outline followed by a NaN row, where a line trace lifts its pen."""
    unit = np.stack([np.cos(CIRCLE), np.sin(CIRCLE)], 1)  # (73, 2)
    outlines = mean[:, None] + half_axes[:, None] * unit  # (K, 73, 2)
    gaps = np.full((len(mean), 1, 2), np.nan)
    return np.concatenate([outlines, gaps], 1).reshape(-1, 2)


def prior_gaussians(encoder: Posterior) -> tuple[np.ndarray, np.ndarray, str]:
    """The prior's Gaussians as means and standard deviations (K, 2), and their name in the legend."""
    components = encoder.prior_components()
    if components is None:
        return np.zeros((1, 2)), np.ones((1, 2)), "prior N(0, I)"
    mean, log_var = (t.detach().cpu() for t in components)
    return mean.numpy(), (0.5 * log_var).exp().numpy(), f"prior's {len(mean)} Gaussians"


def posterior_figure(
    view: RunView,
    prior: tuple[np.ndarray, np.ndarray, str],
    items: np.ndarray,
    mean: np.ndarray,
    std: np.ndarray,
    aggregate: np.ndarray,
    reconstructions: np.ndarray,
    decoded: np.ndarray,
) -> go.Figure:
    fig = make_subplots(
        rows=1,
        cols=2,
        horizontal_spacing=0.12,
        subplot_titles=("latent plane: q(z | x) at 2σ", "data plane: × x, ● E[x | z = μ]"),
    )
    prior_mean, prior_std, prior_name = prior
    for radius, dash in ((1, "dot"), (2, "dash")):
        outline = _ellipses(prior_mean, radius * prior_std)  # one trace for all of the prior's Gaussians
        fig.add_scatter(
            x=outline[:, 0],
            y=outline[:, 1],
            mode="lines",
            hoverinfo="skip",
            name=f"{prior_name} at {radius}σ",
            line={"color": "grey", "dash": dash},
            row=1,
            col=1,
        )
    fig.add_scatter(
        x=aggregate[:, 0],
        y=aggregate[:, 1],
        mode="markers",
        name="μ(x) of test items",
        marker={"size": 3, "color": f"rgb{DATA_COLOR}", "opacity": 0.35},
        hoverinfo="skip",
        row=1,
        col=1,
    )
    data = view.data_points
    fig.add_scatter(
        x=data[:, 0],
        y=data[:, 1],
        mode="markers",
        showlegend=False,
        hoverinfo="skip",
        marker={"size": 3, "color": f"rgb{DATA_COLOR}", "opacity": 0.25},
        row=1,
        col=2,
    )
    fig.add_scatter(
        x=decoded[:, 0],
        y=decoded[:, 1],
        mode="markers",
        name="E[x | z], z ~ q(z | item #1)",
        marker={"size": 4, "color": PALETTE[1], "opacity": 0.35},
        hoverinfo="skip",
        row=1,
        col=2,
    )
    for i in range(len(items)):
        color = PALETTE[(i + 1) % len(PALETTE)]
        ellipse_x, ellipse_y = mean[i, 0] + 2 * std[i, 0] * np.cos(CIRCLE), mean[i, 1] + 2 * std[i, 1] * np.sin(CIRCLE)
        fig.add_scatter(
            x=ellipse_x,
            y=ellipse_y,
            mode="lines",
            name=f"item #{i + 1}",
            legendgroup=str(i),
            line={"color": color},
            row=1,
            col=1,
        )
        fig.add_scatter(
            x=[items[i, 0], reconstructions[i, 0]],
            y=[items[i, 1], reconstructions[i, 1]],
            mode="lines+markers",
            legendgroup=str(i),
            showlegend=False,
            line={"color": color, "dash": "dot"},
            marker={"symbol": ["x", "circle"], "size": 9, "color": color},
            row=1,
            col=2,
        )
    x_min, x_max, y_min, y_max = view.bounds
    fig.update_layout(
        template=TEMPLATE, height=SAMPLE_HEIGHT + 40, legend={"orientation": "h", "y": -0.25}, margin={"t": 60}
    )
    fig.update_xaxes(range=[-3, 3], title_text="z₁", row=1, col=1)
    fig.update_yaxes(range=[-3, 3], title_text="z₂", scaleanchor="x", row=1, col=1)
    fig.update_xaxes(range=[x_min, x_max], title_text="x₁", row=1, col=2)
    fig.update_yaxes(range=[y_min, y_max], title_text="x₂", scaleanchor="x2", row=1, col=2)
    return fig


def image_posteriors(view: RunView) -> tuple:
    """Items, reconstructions and decoded posterior draws as one picture; each item's KL and σ; the active units."""
    items = view.data.test[:ITEMS]
    with view.run.inspecting(seed=0) as model:
        encoder = ability(model, Posterior)
        mean, std = (t.cpu() for t in encoder.posterior(items.to(view.device)))
        spread = encoder.posterior(view.data.test[:AGGREGATE].to(view.device))[0].var(0).cpu()
        draws = mean[:, None] + std[:, None] * torch.randn(ITEMS, IMAGE_DRAWS, mean.shape[1])
        decoded = model.decode(torch.cat([mean[:, None], draws], 1).flatten(0, 1).to(view.device)).cpu()
        kl = encoder.posterior_kl(items.to(view.device)).cpu()
    rows = torch.cat([items[:, None], decoded.reshape(ITEMS, IMAGE_DRAWS + 1, *items.shape[1:])], 1)
    active = int((spread > ACTIVE).sum())
    said = (
        f"{view.title}: {active} of {len(spread)} latent dimensions active (the rest have collapsed onto the prior); "
        f"mean KL(q‖p) of these items {float(kl.mean()):.2f} nats. Draws that all look like the item: the code pins "
        "it down; draws that wander: the decoder is guessing."
    )
    picture = image_grid(rows.flatten(0, 1).numpy(), view.data_spec.levels, columns=IMAGE_DRAWS + 2, scale=6)
    fig = go.Figure(go.Image(z=np.repeat(picture[..., None], 3, axis=2), hoverinfo="skip"))
    fig.update_layout(
        template=TEMPLATE,
        height=SAMPLE_HEIGHT + 40,
        margin={"t": 60},
        title={"text": f"Each row: item · E[x | z = μ] · {IMAGE_DRAWS} × E[x | z], z ~ q(z | x)", "x": 0.02},
    )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    table = gr.Dataframe(
        headers=IMAGE_HEADERS,
        value=[
            [f"#{i + 1}", round(float(kl[i]), 2), round(float(std[i].mean()), 3), int((std[i] < 0.5).sum())]
            for i in range(ITEMS)
        ],
    )
    return said, fig, table
