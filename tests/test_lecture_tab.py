"""The Lecture 1 tab without a browser: the sliders' image is read back, the class picker changes the samples, and
opening the tab fills every output it has."""

from __future__ import annotations

import gradio as gr
import numpy as np

from app.tabs import lecture as lecture_tab


def test_the_sliders_render_a_shape_that_the_encoder_reads_back() -> None:
    picture, rows = lecture_tab.render_and_read("cross", 0.6, 0.5, 0.45, 12)
    assert picture.ndim == 2 and picture.min() < 100  # ink on paper
    assert rows[0] == ["kind", "cross", "cross", "right"]
    assert [row[0] for row in rows[1:]] == ["size", "x", "y", "intensity"]
    assert all(float(row[3]) < 0.05 for row in rows[1:4])  # size, x and y within 5 % of the image width


def test_the_class_picker_changes_the_samples_of_every_conditional_model() -> None:
    threes, sevens = lecture_tab.class_samples("3"), lecture_tab.class_samples("7")
    assert len(threes) == len(sevens) == len(lecture_tab.CONDITIONAL_MODELS) == 3
    for three, seven in zip(threes, sevens):
        assert three.shape == seven.shape and not np.array_equal(three, seven)


def test_opening_the_tab_fills_each_of_its_outputs_once() -> None:
    with gr.Blocks(), gr.Tab("Lecture 1") as tab:
        outputs = lecture_tab.build_lecture_tab(tab)
    values = lecture_tab.first_views()
    assert len(values) == len(outputs.everything()) == len(set(map(id, outputs.everything())))
    assert all(value is not None for value in values)


def test_the_classifier_table_and_curve_show_naive_bayes_beside_the_two_classifiers() -> None:
    figure, rows, _, _ = lecture_tab.classifier_views()
    assert [row[0] for row in rows] == ["0 %", "25 %", "50 %", "75 %", "90 %"]
    assert all(len(row) == 5 and all(cell.endswith("%") for cell in row[1:4]) for row in rows)
    names = [trace.name for trace in figure.data]
    assert any(name.startswith("naive Bayes") for name in names) and len(names) == 4  # three curves, the exact point
