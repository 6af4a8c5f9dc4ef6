"""Follow the lecturer: a run shared by a short code is watched read-only on other pages, drawn once for all of
them, copied on request, and gone for its followers the moment its owner stops sharing it."""

from __future__ import annotations

import asyncio
import json

import gradio as gr
import pytest
import torch

from app.page.following import Boards
from app.page.session import Backend, Session
from app.page.streaming import FIGURES
from app.tabs import class_game, follow, real_or_fake
from app.tabs.class_game import ClassGameView
from dgm_core.inspect.real_or_fake import TILES
from dgm_core.runs.sharing import ALPHABET, CODE_LENGTH, MAX_CODES_PER_BROWSER, Shares
from dgm_core.runs.store import RunStore
from dgm_core.serve.scheduler import Scheduler
from tests.app_helpers import CPU, trained

OWNER, FOLLOWER = "a" * 32, "b" * 32
GAME = ClassGameView("grid", "seen", "marks", "verdict")  # names stand in for the components, as keys
WHERE = follow.FollowView("code", "message", "status", "samples", "loss", "nll", GAME)


# --- follow codes ---------------------------------------------------------------------------------------------------


def test_a_run_gets_one_short_code_without_look_alikes() -> None:
    shares = Shares()
    code = shares.share(OWNER, 1)
    assert len(code) == CODE_LENGTH and set(code) <= set(ALPHABET) and not set(code) & set("0o1li")
    assert shares.share(OWNER, 1) == code
    assert shares.share(OWNER, 2) != code
    assert shares.lookup(code) == (OWNER, 1)
    assert shares.lookup(f"  {code.upper()} ") == (OWNER, 1)  # as typed from a projector


@pytest.mark.parametrize("typed", [None, 123, "", "   ", "k7m2q0", "k7m2qxx", "<script>", "x" * 10_000, ["k7m2qx"]])
def test_a_malformed_code_names_nothing(typed: object) -> None:
    shares = Shares()
    shares.share(OWNER, 1)
    assert shares.lookup(typed) is None


def test_stopping_sharing_forgets_the_code() -> None:
    shares = Shares()
    code = shares.share(OWNER, 1)
    assert shares.unshare(OWNER, 1) and shares.lookup(code) is None
    assert not shares.unshare(OWNER, 1)
    assert shares.share(OWNER, 1) != code or shares.lookup(code) == (OWNER, 1)  # a new code, never a dangling one


def test_a_browser_shares_a_bounded_number_of_runs() -> None:
    shares = Shares()
    for run_id in range(1, MAX_CODES_PER_BROWSER + 1):
        shares.share(OWNER, run_id)
    with pytest.raises(ValueError, match="stop sharing one"):
        shares.share(OWNER, MAX_CODES_PER_BROWSER + 1)
    assert shares.share(FOLLOWER, 1)  # another browser is not held back


def test_codes_survive_a_restart_and_a_damaged_file_shares_nothing(tmp_path) -> None:
    path = tmp_path / "shares.json"
    code = Shares(path).share(OWNER, 3)
    assert Shares(path).lookup(code) == (OWNER, 3)
    path.write_text(json.dumps({code: ["not a token", 3], "zzzzzz": [OWNER, -1], "k7m2qx": [OWNER, 4]}))
    assert Shares(path).lookup(code) is None and Shares(path).lookup("zzzzzz") is None
    assert Shares(path).lookup("k7m2qx") == (OWNER, 4)
    path.write_text("{not json")
    assert Shares(path).lookup("k7m2qx") is None


# --- pages that follow ----------------------------------------------------------------------------------------------


@pytest.fixture
def backend(tmp_path) -> Backend:
    return Backend(CPU, Scheduler(1), RunStore(tmp_path / "runs"))


def page(backend: Backend, token: str) -> Session:
    session = Session(backend)
    session.attach(token)
    return session


def test_a_follower_sees_the_shared_run_and_nothing_else_of_its_owner(backend: Backend) -> None:
    owner = page(backend, OWNER)
    other = trained(owner, "moons", "RealNVP", steps=20)
    owner.current = shown = trained(owner, "moons", "MADE", steps=20)
    said = follow.share(owner)
    code = backend.shares.code_of(OWNER, shown.id)
    assert code is not None and f"?follow={code}" in said

    follower, boards = page(backend, FOLLOWER), Boards(backend.shares, backend.store)
    answer = follow.start_following(WHERE, boards, follower, code.upper())
    assert "MADE on moons" in answer["message"] and "MADE on moons" in answer["status"]
    assert follower.following == (code, 1)
    board = boards.board(code)
    assert board.view.run is shown.run  # the owner's run itself, live: not a copy
    assert other.run is not board.view.run and not follower.views  # nothing else of the owner's, nothing of its own


def test_every_follower_gets_one_drawing_of_each_figure(backend: Backend) -> None:
    owner = page(backend, OWNER)
    owner.current = trained(owner, "moons", "MADE", steps=20)
    code = backend.shares.share(OWNER, owner.current.id)
    boards = Boards(backend.shares, backend.store)
    for figure in FIGURES.values():
        first = boards.board(code).drawing(figure)
        again = boards.board(code).drawing(figure)
        assert again[1] is first[1]  # the very same JSON string: drawn once
        assert json.loads(first[1])["data"]


def test_an_unknown_code_is_refused_and_changes_nothing(backend: Backend) -> None:
    follower, boards = page(backend, FOLLOWER), Boards(backend.shares, backend.store)
    answer = follow.start_following(WHERE, boards, follower, "<b>k7m2qx</b>")
    assert "No run is shared under" in answer["message"] and "<b>" not in answer["message"]
    assert follower.following is None
    assert "Follow a shared run first" in follow.copy_to_my_runs(WHERE, boards, follower)["message"]


def test_copy_to_my_runs_gives_an_independent_run_where_the_shared_one_stands(backend: Backend) -> None:
    owner = page(backend, OWNER)
    owner.current = shown = trained(owner, "moons", "MADE", steps=20)
    code = backend.shares.share(OWNER, shown.id)
    follower, boards = page(backend, FOLLOWER), Boards(backend.shares, backend.store)
    follow.start_following(WHERE, boards, follower, code)
    said = follow.copy_to_my_runs(WHERE, boards, follower)["message"]
    assert "Copied as your run **#1**" in said
    mine = follower.views[1].run
    assert mine is not shown.run and mine.step == shown.run.step
    assert mine.scores.nll == shown.run.scores.nll
    for name, value in mine.model.state_dict().items():
        assert torch.equal(value, shown.run.model.state_dict()[name])
    with torch.no_grad():
        next(mine.model.parameters()).add_(1.0)  # the copy is its own
    assert not torch.equal(next(mine.model.parameters()), next(shown.run.model.parameters()))


def test_stop_sharing_ends_every_followers_view(backend: Backend) -> None:
    owner = page(backend, OWNER)
    owner.current = trained(owner, "moons", "MADE", steps=20)
    code = backend.shares.share(OWNER, owner.current.id)
    follower, boards = page(backend, FOLLOWER), Boards(backend.shares, backend.store)
    follow.start_following(WHERE, boards, follower, code)

    async def watch_status() -> list:
        said, stream = [], follow._watch(follower, boards, None)
        said.append(await anext(stream))
        assert "no longer shared" in follow.unshare(owner)
        said.extend([update async for update in stream])
        return said

    said = asyncio.run(asyncio.wait_for(watch_status(), timeout=10))
    assert "MADE on moons" in said[0] and "No longer shared" in said[-1]
    assert boards.board(code) is None
    assert follow.unshare(owner) == "The Train tab's run is not shared."


def test_deleting_a_shared_run_unshares_it(backend: Backend) -> None:
    owner = page(backend, OWNER)
    shown = trained(owner, "moons", "MADE", steps=20)
    code = backend.shares.share(OWNER, shown.id)
    owner.delete(shown.id)
    assert backend.shares.lookup(code) is None


def test_a_shared_run_is_followed_from_its_file_once_its_owner_left(backend: Backend) -> None:
    owner = page(backend, OWNER)
    shown = trained(owner, "moons", "MADE", steps=20)
    code = backend.shares.share(OWNER, shown.id)
    owner.close()
    backend.store.forget(OWNER)  # the owner's browser let go: its runs left memory
    board = Boards(backend.shares, backend.store).board(code)
    assert board is not None and board.view.run is not shown.run and board.view.run.step == shown.run.step


def test_sharing_needs_a_run_and_a_store() -> None:
    memory_only = Backend(CPU, Scheduler(1))
    session = Session(memory_only)
    assert "Train or open a run first" in follow.share(session)
    session.current = trained(session, "moons", "MADE", steps=5)
    assert "run store" in follow.share(session)


# --- a class plays Real or fake? on the shared run ------------------------------------------------------------------


def test_a_class_plays_the_owners_round_and_the_owner_sees_its_answers_tally(backend: Backend) -> None:
    owner = page(backend, OWNER)
    shown = trained(owner, "moons", "MADE", steps=20)
    code = backend.shares.share(OWNER, shown.id)
    boards = Boards(backend.shares, backend.store)
    game_view = real_or_fake.GameView("table", "grid", "marks", "verdict", "class_line")
    dealt = real_or_fake.new_round(game_view, boards, owner, shown.id)
    table = dealt["table"]
    assert f"code {code}" in dealt["verdict"] and table.dealt[0] == code

    students = [page(backend, token) for token in ("c" * 32, "d" * 32)]
    sections = []
    for student in students:
        follow.start_following(WHERE, boards, student, code)
        sections.append(asyncio.run(anext(class_game.follow_rounds(student, boards, GAME))))
    number = sections[0]["seen"]
    assert sections[0]["grid"] == dealt["grid"].to_json() and "Round" in sections[0]["verdict"]

    key = sorted(table.round.real_tiles)
    right = class_game.answer(GAME, boards, students[0], number, key)["verdict"]
    assert f"**{TILES} of {TILES}** right" in right and "model" not in right  # its score, not the key
    for refused, said in [
        ((students[0], number, key), "answered this round already"),
        ((students[1], number + 1, key), "A new round was dealt"),
        ((students[1], number, [0]), "Not counted"),
    ]:
        assert said in class_game.answer(GAME, boards, *refused)["verdict"]
    class_game.answer(GAME, boards, students[1], number, [])

    async def owners_line() -> str:
        return await anext(class_game.class_answers(boards, owner, *table.dealt))

    assert "2 players, 32 answers" in asyncio.run(owners_line())

    real_or_fake.submit(game_view, boards, table, key)  # the owner's own answer reveals the key to the class
    revealed = asyncio.run(anext(class_game.follow_rounds(students[1], boards, GAME)))
    labels = [a["text"] for a in json.loads(revealed["grid"])["layout"]["annotations"]]
    assert labels == [f"<b>{n}</b> {'real' if n in table.round.real_tiles else 'model'}" for n in range(1, TILES + 1)]
    assert "is over" in revealed["verdict"]
    assert "is over" in class_game.answer(GAME, boards, students[1], number, key)["verdict"]


def test_a_round_on_a_run_nobody_follows_stays_the_owners(backend: Backend) -> None:
    owner = page(backend, OWNER)
    shown = trained(owner, "moons", "MADE", steps=20)
    boards = Boards(backend.shares, backend.store)
    game_view = real_or_fake.GameView("table", "grid", "marks", "verdict", "class_line")
    dealt = real_or_fake.new_round(game_view, boards, owner, shown.id)
    assert dealt["table"].dealt is None and "shared" not in dealt["verdict"]
    student = page(backend, FOLLOWER)
    student.following = ("k7m2qx", 1)
    assert "No round to answer" in class_game.answer(GAME, boards, student, 1, [1])["verdict"]


def test_a_follow_link_opens_the_follow_tab_following_its_code_and_a_plain_address_changes_nothing(
    backend: Backend,
) -> None:
    owner = page(backend, OWNER)
    owner.current = trained(owner, "moons", "MADE", steps=20)
    code = backend.shares.share(OWNER, owner.current.id)
    boards, student = Boards(backend.shares, backend.store), page(backend, FOLLOWER)
    unchanged = follow.from_link(WHERE, boards, "tabs", student, None)
    assert unchanged and all(isinstance(value, type(gr.skip())) for value in unchanged.values())
    shown = follow.from_link(WHERE, boards, "tabs", student, code)
    assert shown["tabs"].selected == "follow" and shown["code"] == code and "Following" in shown["message"]
    assert student.following == (code, 1)
    bogus = follow.from_link(WHERE, boards, "tabs", page(backend, "e" * 32), "x" * 5000)
    assert "No run is shared" in bogus["message"] and len(bogus["code"]) == 20


def test_processes_sharing_one_run_store_know_each_others_codes_and_lose_none(tmp_path) -> None:
    path = tmp_path / "shares.json"
    first, second = Shares(path), Shares(path)  # two app processes behind one load balancer
    code = first.share(OWNER, 1)
    assert second.lookup(code) == (OWNER, 1)  # a link shared through one works through the other
    other = second.share(FOLLOWER, 7)
    third = first.share(OWNER, 2)  # written over the file the second process changed: nothing lost
    assert {Shares(path).lookup(c) for c in (code, other, third)} == {(OWNER, 1), (FOLLOWER, 7), (OWNER, 2)}
    assert second.unshare(OWNER, 1) and first.lookup(code) is None


def test_a_follower_served_by_another_process_sees_the_run_as_its_file_is_written_anew(tmp_path) -> None:
    root = tmp_path / "runs"  # one run store, two app processes behind a load balancer
    backend = Backend(CPU, Scheduler(1), RunStore(root), shares=Shares(root / "shares.json"))
    owner = page(backend, OWNER)
    shown = trained(owner, "moons", "MADE", steps=20)
    code = backend.shares.share(OWNER, shown.id)
    elsewhere = Boards(Shares(root / "shares.json"), RunStore(root))  # the process serving the follower
    first = elsewhere.board(code)
    assert first.view.run is not shown.run and first.view.run.step == 20
    assert elsewhere.board(code) is first  # nothing written since: the same board
    shown.run.start(10)
    while shown.run.active:
        shown.run.advance(1.0)
    backend.store.save(OWNER, shown.run)  # as the owner's process saves a training run every few seconds
    assert elsewhere.board(code).view.run.step == 30
