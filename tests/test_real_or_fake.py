"""Real or fake? — a player scored against chance beside the MMD test on the same tiles, a class's answers pooled, every
malformed answer refused, and the truth kept on the server until a player is scored."""

from __future__ import annotations

import random
import threading

import gradio as gr
import pytest
import torch

from app.page.following import Boards
from app.tabs import real_or_fake as page
from dgm_core.inspect import real_or_fake
from dgm_core.inspect.real_or_fake import LEVEL, TILES, Round, Tally, binomial_tail
from dgm_core.learn.evaluation import mmd_test
from dgm_core.runs.sharing import Shares
from tests.app_helpers import Session, trained

torch.set_num_threads(1)


def a_round(real: list[bool], seed: int = 0) -> Round:
    """A round of tiny 'images' (1×2×2) whose truth is given: no model needed."""
    generator = torch.Generator().manual_seed(seed)
    return Round(torch.rand(len(real), 1, 2, 2, generator=generator), tuple(real), "image")


TRUTH = [True, False, False, True, True, False, True, False, False, False, True, True, False, True, False, True]
REAL = {i + 1 for i, real in enumerate(TRUTH) if real}


# --- one player against chance ------------------------------------------------------------------------------------


def test_a_player_always_right_scores_p_two_to_the_minus_n():
    verdict = a_round(TRUTH).score(sorted(REAL))
    assert (verdict.correct, verdict.accuracy) == (TILES, 1.0)
    assert verdict.binomial_p == 2.0**-TILES
    assert "100 % (16 of 16 right)" in verdict.summary() and "you beat chance" in verdict.summary()


def test_a_player_always_wrong_scores_p_one_and_is_told_they_see_it_backwards():
    verdict = a_round(TRUTH).score([tile for tile in range(1, TILES + 1) if tile not in REAL])
    assert (verdict.correct, verdict.binomial_p) == (0, 1.0)
    assert "did not clearly beat chance" in verdict.summary() and "backwards" in verdict.summary()


def test_the_binomial_tail_is_exact():
    assert binomial_tail(12, 16) == (1820 + 560 + 120 + 16 + 1) / 2**16
    assert binomial_tail(0, 16) == binomial_tail(-3, 16) == 1.0
    assert binomial_tail(3, 4) + binomial_tail(2, 4) == pytest.approx(5 / 16 + 11 / 16)
    assert binomial_tail(16_000, 32_000) == pytest.approx(0.5, abs=0.003)  # a large class's pooled answers


def test_guessing_players_beat_chance_only_as_often_as_the_test_allows():
    """Players who guess, over many rounds: the share with p ≤ α is the binomial test's exact level (the largest
    P[X ≥ k] ≤ α), never more: p-values as uniform as a discrete test allows, the false positives at the level."""
    rng = random.Random(1)
    p_values = []
    for seed in range(200):
        game = a_round([rng.random() < 0.5 for _ in range(TILES)], seed)
        for _ in range(10):
            p_values.append(game.score([tile for tile in range(1, TILES + 1) if rng.random() < 0.5]).binomial_p)
    for alpha in (LEVEL, 0.2, 0.5):
        exact = max(p for p in (binomial_tail(k, TILES) for k in range(TILES + 1)) if p <= alpha)
        share = sum(p <= alpha for p in p_values) / len(p_values)
        assert share == pytest.approx(exact, abs=0.015), alpha
    assert sum(p <= LEVEL for p in p_values) / len(p_values) <= LEVEL


# --- the round: its tiles, its sample test, its answers ---------------------------------------------------------------


def test_a_round_deals_clouds_of_held_out_points_or_of_the_models_each_by_a_coin_and_reproducibly():
    held_out = torch.rand(400, 2)  # data in [0, 1)²; the "model" draws from [5, 6)²
    calls = []

    def draw(n: int, seed: int) -> torch.Tensor:
        calls.append(n)
        return 5 + torch.rand(n, 2, generator=torch.Generator().manual_seed(seed))

    game = Round.deal(draw, held_out, "points2d", seed=3)
    assert game.tiles.shape == (TILES, 25, 2) and calls == [TILES * 25]  # as large as 400 points allow, all drawn
    for number, cloud in enumerate(game.tiles, start=1):
        assert bool((cloud < 1).all()) == (number in game.real_tiles) == bool((cloud < 5).all())
    real_points = game.tiles[[number - 1 for number in sorted(game.real_tiles)]].reshape(-1, 2)
    assert len(real_points.unique(dim=0)) == len(real_points)  # distinct held-out points
    assert torch.equal(Round.deal(draw, held_out, "points2d", seed=3).tiles, game.tiles)
    counts = {len(Round.deal(draw, held_out, "points2d", seed=seed).real_tiles) for seed in range(12)}
    assert len(counts) > 1  # a coin per tile: how many are real varies from round to round
    assert Round.deal(draw, torch.rand(5000, 2), "points2d", seed=0).tiles.shape == (TILES, 64, 2)

    test = game.sample_test()  # the MMD test on exactly the points shown, real against the model's
    model_points = game.tiles[[i for i in range(TILES) if i + 1 not in game.real_tiles]].reshape(-1, 2)
    assert (test.real_items, test.model_items, test.unit) == (len(real_points), len(model_points), "point")
    assert test.p_value == mmd_test(real_points, model_points)[1] < LEVEL
    assert game.score([]).sample_test is test  # computed once, for every player


def test_a_round_of_images_deals_whole_held_out_items():
    held_out = torch.randint(0, 17, (40, 1, 8, 8)).float()
    game = Round.deal(lambda n, seed: torch.full((n, 1, 8, 8), -1.0), held_out, "image", seed=0)
    assert game.tiles.shape == (TILES, 1, 8, 8)
    for number, tile in enumerate(game.tiles, start=1):
        from_data = any(torch.equal(tile, item) for item in held_out)
        assert from_data == (number in game.real_tiles) != bool((tile == -1).all())


def test_too_little_held_out_data_is_refused_in_words():
    with pytest.raises(ValueError, match="needs 16 held-out items; this data set holds out 9"):
        Round.deal(lambda n, seed: torch.zeros(n, 1, 8, 8), torch.zeros(9, 1, 8, 8), "image", seed=0)
    with pytest.raises(ValueError, match="needs 256 held-out points .* holds out 200"):
        Round.deal(lambda n, seed: torch.zeros(n, 2), torch.zeros(200, 2), "points2d", seed=0)


def test_with_fewer_than_two_items_a_side_there_is_no_sample_test_and_the_verdict_says_so():
    verdict = a_round([True] + [False] * (TILES - 1)).score([1])
    assert verdict.sample_test.p_value is None and "no test" in verdict.summary()


def test_few_images_a_side_are_said_to_give_the_sample_test_little_power():
    assert "little power" in a_round(TRUTH).score([]).summary()


MALFORMED = [
    ([17], "no tile 17"),
    ([0], "no tile 0"),
    ([3, 3], "Tile 3 is marked more than once"),
    ([1.5], "whole numbers from 1 to 16, not '1.5'"),
    ([2.0], "whole numbers"),
    (["3"], "whole numbers"),
    ([True], "whole numbers"),
    (list(range(1, 18)), "17 tiles marked, but there are only 16"),
    ("1,2", "a list of tile numbers, not str"),
    (None, "a list of tile numbers, not NoneType"),
    ({1: True}, "a list of tile numbers, not dict"),
]


@pytest.mark.parametrize(("answer", "message"), MALFORMED)
def test_a_malformed_answer_is_refused_with_a_message_and_counts_for_nothing(answer, message):
    tally = Tally(a_round(TRUTH))
    with pytest.raises(ValueError, match=message):
        tally.add("ana", answer)
    assert tally.result().players == 0 and sum(tally.result().votes_real) == 0
    tally.add("ana", [1])  # the same player may still answer, properly
    assert tally.result().players == 1


# --- a class's tally ------------------------------------------------------------------------------------------------


def test_a_tally_pools_the_class_and_takes_each_tiles_majority():
    tally = Tally(a_round(TRUTH))
    wrong = [tile for tile in range(1, TILES + 1) if tile not in REAL]
    assert tally.add("ana", sorted(REAL)).correct == 16
    tally.add("ben", sorted(REAL)[:-1])  # 15 right: missed the last real tile
    tally.add("cy", wrong)  # 0 right
    result = tally.result()
    assert (result.players, result.right, result.accuracy) == (3, 31, 31 / 48)
    assert result.pooled_p == binomial_tail(31, 48)
    assert result.majority == (15, 16)  # the last real tile: 1 vote of 3, the majority says model
    assert result.majority_p == binomial_tail(15, 16)
    assert "3 players, 48 answers: 65 % right" in result.summary() and "15 of 16 tiles right" in result.summary()
    tally.add("dee", [])  # a tie of 2 against 2 on every real tile but the last: those tiles are undecided
    assert tally.result().majority == (8, 9)
    with pytest.raises(ValueError, match="answered this round already"):
        tally.add("ana", [])
    assert tally.result().players == 4


def test_a_tally_refuses_an_unnamed_player_and_a_full_class(monkeypatch):
    tally = Tally(a_round(TRUTH))
    for player in ("", None, "x" * 201):
        with pytest.raises(ValueError, match="named by a string"):
            tally.add(player, [1])
    monkeypatch.setattr(real_or_fake, "MAX_PLAYERS", 2)
    tally.add("ana", [1])
    tally.add("ben", [2])
    with pytest.raises(ValueError, match="has its 2 players already"):
        tally.add("cy", [3])
    assert tally.result().players == 2


def test_a_tally_counts_every_answer_sent_at_once_from_many_threads():
    tally = Tally(a_round(TRUTH))
    players = [f"player {i}" for i in range(64)]
    threads = [threading.Thread(target=tally.add, args=(player, sorted(REAL))) for player in players]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result = tally.result()
    assert result.players == 64 and result.right == 64 * TILES


# --- the page -------------------------------------------------------------------------------------------------------

WHERE = page.GameView("table", "grid", "marks", "verdict", "class_line")  # the tab's outputs, by name
BOARDS = Boards(Shares(), None)  # nothing shared: a round stays this page's


def test_the_page_receives_nothing_that_depends_on_the_truth_until_the_player_is_scored():
    with gr.Blocks() as demo:
        with gr.Tab("Real or fake?") as tab:
            page.build_real_or_fake_tab(gr.State(None), tab, BOARDS)
    (new_round,) = [event for event in demo.fns.values() if getattr(event.fn, "func", None) is page.new_round]
    (held,) = [output for output in new_round.outputs if isinstance(output, gr.State)]  # on the server only
    assert new_round.fn.args[0].table is held

    session = Session()
    run = trained(session, "digits", "MADE", 2)
    shown = page.new_round(WHERE, BOARDS, session, run.id)
    game = shown["table"].round
    flipped = Round(game.tiles, tuple(i + 1 not in game.real_tiles for i in range(TILES)), game.kind)
    other = page.Table(flipped, shown["table"].title, None, shown["table"].levels)
    assert page.grid_figure(other).to_json() == shown["grid"].to_json()  # the same picture whatever the truth
    assert (shown["marks"], shown["verdict"]) == ([], page.PROMPT)


@pytest.mark.parametrize("dataset", ["moons", "digits"])
def test_a_round_on_a_trained_run_opens_scores_once_and_reveals_the_answer(dataset):
    session = Session()
    run = trained(session, dataset, "MADE", 2)
    table = page.new_round(WHERE, BOARDS, session, run.id)["table"]
    for answer, message in [([17], "no tile 17"), ([2, 2], "more than once")]:
        with pytest.raises(gr.Error, match=message):  # refused; the round stays in play
            page.submit(WHERE, BOARDS, table, answer)
    scored = page.submit(WHERE, BOARDS, table, sorted(table.round.real_tiles))
    assert scored["table"] is None and "100 % (16 of 16 right)" in scored["verdict"]
    labels = [annotation.text for annotation in scored["grid"].layout.annotations]
    assert labels == [f"<b>{n}</b> {'real' if n in table.round.real_tiles else 'model'} ✓" for n in range(1, 17)]
    with pytest.raises(gr.Error, match="New round first"):
        page.submit(WHERE, BOARDS, scored["table"], [1])
    with pytest.raises(gr.Error, match="Pick a run"):
        page.new_round(WHERE, BOARDS, session, 999)
