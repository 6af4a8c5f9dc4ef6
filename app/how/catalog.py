"""Every How-it-works view, in the order the Train tab shows them under its figures. Each says which runs it can
show, from their capabilities (``HOW.fits``); the page builds them all, and a view asked about a run it cannot show
says what to train or open instead."""

from __future__ import annotations

import gradio as gr

from app.how import conditionals, diffusion, energy, flow_layers, pixels, players, posteriors

VIEWS = (flow_layers, conditionals, pixels, posteriors, players, energy, diffusion)  # each: HOW and build(session)


def build_all(session: gr.State) -> None:
    for view in VIEWS:
        view.build(session)
