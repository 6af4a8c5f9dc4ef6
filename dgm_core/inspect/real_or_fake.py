"""Real or fake? Human evaluation (HYPE-style, Zhou et al. 2019) beside the kernel two-sample test, on the same items.

A ``Round`` deals ``TILES`` tiles, each held-out data (the test split) or the model's samples. The player marks the
tiles they think real; ``Round.score`` says how many they got right, how often guessing does as well (a one-sided
exact binomial test), and what the MMD two-sample test (``evaluation.mmd_test``) says of the very items shown. A
``Tally`` pools a class's answers to one round.

    game = Round.deal(run.draw, run.data.test, run.data.spec.kind, seed=7)   # a page shows game.tiles, numbered 1…16
    verdict = game.score({2, 5, 11})                                        # the tile numbers marked real
    verdict.summary()   # "You told them apart at 69 % (11 of 16 right): guessing does as well … p = 0.11 …"

What a tile is. An image is a tile. A single 2D point cannot be judged (any point could come from either), so a 2D
tile is a cloud of up to ``CLOUD_POINTS`` points, all from the data or all from the model: its shape is what the eye
judges (the moons' arcs, how tight the Gaussians are).

Why a fair coin per tile, and not exactly half real. H₀, "the player cannot tell", means the marks are independent of
the truth. With each tile's truth a coin of its own, each mark is then right with probability ½, independently of the
others: the number right is exactly X ~ Bin(n, ½) whatever the player's strategy (all "real", a pattern, hunches), and
p = P[X ≥ right] = Σ_{j ≥ right} C(n, j) / 2ⁿ. Were exactly half real, a player marking half would score more widely
than binomial, and one marking all would score n/2 for sure. So the page never says how many are real (8 ± 2 of 16).

The truth stays in the ``Round`` (on the server) until a player is scored: nothing a page shows before depends on it.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from dgm_core.data import DataKind
from dgm_core.learn.evaluation import mmd_test

TILES = 16
CLOUD_POINTS = 64  # points in a 2D tile: enough to show a shape, few enough that 16 tiles fit one screen
MIN_CLOUD_POINTS = 16  # a smaller cloud shows no shape: a data set with less held-out data cannot play
LEVEL = 0.05  # the tests' significance level, for the verdict's words
FEW_ITEMS = 50  # fewer items a side than this: the sample test notices only large differences
MAX_PLAYERS = 2000  # a class's tally stops here (a lecture hall, with room to spare)


def binomial_tail(right: int, trials: int) -> float:
    """P[X ≥ right] for X ~ Bin(trials, ½): how often pure guessing gets at least ``right`` of ``trials`` right.

    Σ_{j=right}^{trials} C(trials, j) / 2^trials, summed exactly in integers (C(n, j + 1) = C(n, j)(n − j)/(j + 1))
    and divided once: exact for a class's thousands of answers too."""
    if right <= 0:
        return 1.0
    term, total = math.comb(trials, right), 0
    for j in range(right, trials + 1):
        total += term
        term = term * (trials - j) // (j + 1)
    return total / 2**trials


def _p(p: float) -> str:
    """A p-value in words: two decimals, three below 0.01, "< 0.001" below that."""
    return "< 0.001" if p < 0.001 else f"= {p:.3f}" if p < 0.01 else f"= {p:.2f}"


@dataclass(frozen=True)
class SampleTest:
    """The MMD permutation test of H₀ "the real tiles' items and the model's come from one distribution", on exactly
    the items the grid shows: the real tiles' images (or points, pooled) against the model's."""

    real_items: int
    model_items: int
    unit: str  # "image" or "point"
    p_value: float | None  # None when a side has fewer than two items (the unbiased MMD² needs two)

    def words(self) -> str:
        compared = f"{self.real_items} real {self.unit}s against the model's {self.model_items}"
        if self.p_value is None:
            return f"The MMD test needs two items a side; this round dealt {compared}: no test."
        fewest = min(self.real_items, self.model_items)
        told = "tells them apart" if self.p_value < LEVEL else "cannot tell them apart"
        text = f"The MMD test on the same tiles ({compared}): p {_p(self.p_value)}: it {told} at the 5 % level."
        if fewest < FEW_ITEMS:
            text += (
                f" With {fewest} {self.unit}s on a side it has little power: only large differences show, so a high p "
                "here is weak evidence that the model is good."
            )
        return text


@dataclass(frozen=True)
class Verdict:
    """One player's answer to a round, scored. Tiles are numbered 1…``tiles`` in reading order.

    marked_real: the tiles the player marked real; real_tiles: those that were (the answer key, shown once scored).
    """

    tiles: int
    marked_real: frozenset[int]
    real_tiles: frozenset[int]
    sample_test: SampleTest

    @property
    def correct(self) -> int:
        """Tiles marked real that were, plus tiles left unmarked that were the model's."""
        return self.tiles - len(self.marked_real ^ self.real_tiles)

    @property
    def accuracy(self) -> float:
        return self.correct / self.tiles

    @property
    def binomial_p(self) -> float:
        """P[X ≥ correct], X ~ Bin(tiles, ½): how often a guesser does this well or better."""
        return binomial_tail(self.correct, self.tiles)

    def summary(self) -> str:
        p = self.binomial_p
        beat = "beat chance" if p < LEVEL else "did not clearly beat chance"
        text = (
            f"You told them apart at {100 * self.accuracy:.0f} % ({self.correct} of {self.tiles} right): guessing "
            f"does as well or better with p {_p(p)}: you {beat}."
        )
        backwards = binomial_tail(self.tiles - self.correct, self.tiles)  # P[X ≤ correct], by symmetry
        if backwards < LEVEL:
            text += f" So few right is itself rare by guessing (p {_p(backwards)}): you see a difference, backwards."
        return f"{text} {self.sample_test.words()}"


class Round:
    """``tiles`` (n, …) — images (n, C, H, W), or clouds (n, points, 2) for 2D data — and which of them are real
    (``real[i]`` for tile number i + 1). ``deal`` makes one from a run; tests may give tensors directly."""

    def __init__(self, tiles: Tensor, real: tuple[bool, ...], kind: DataKind) -> None:
        if len(tiles) != len(real):
            raise ValueError("a round needs one truth per tile")
        self.tiles = tiles
        self.kind = kind
        self._real = frozenset(i + 1 for i, is_real in enumerate(real) if is_real)
        self._lock = threading.Lock()
        self._sample_test: SampleTest | None = None

    @classmethod
    def deal(
        cls,
        draw: Callable[[int, int], Tensor],
        held_out: Tensor,
        kind: DataKind,
        seed: int,
        tiles: int = TILES,
    ) -> Round:
        """A round from ``draw(n, seed)`` (a run's safe path, ``Run.draw``: its lock held and its random streams
        forked, so training is not disturbed) and the ``held_out`` items. Every tile's truth is a fair coin; the real
        ones are distinct held-out items (clouds of distinct points), the others the model's. The model always draws
        all n tiles' worth, so nothing (not even its time) depends on how many are real. ValueError, in words, when
        the held-out data is too small to deal from."""
        per_tile = 1
        if kind == "points2d":
            per_tile = min(CLOUD_POINTS, len(held_out) // tiles)
            if per_tile < MIN_CLOUD_POINTS:
                raise ValueError(
                    f"A round needs {tiles * MIN_CLOUD_POINTS} held-out points ({tiles} clouds of at least "
                    f"{MIN_CLOUD_POINTS}); this data set holds out {len(held_out)}."
                )
        elif len(held_out) < tiles:
            raise ValueError(f"A round needs {tiles} held-out items; this data set holds out {len(held_out)}.")
        generator = torch.Generator().manual_seed(seed)
        real = torch.rand(tiles, generator=generator) < 0.5
        chosen = held_out[torch.randperm(len(held_out), generator=generator)[: tiles * per_tile]].float()
        drawn = draw(tiles * per_tile, seed).float()
        if drawn.shape != chosen.shape:
            raise ValueError(f"the model drew items of shape {tuple(drawn.shape[1:])}, not the data's")
        shape = (tiles, per_tile, 2) if kind == "points2d" else chosen.shape
        which = real.view(-1, *[1] * (len(shape) - 1))
        return cls(torch.where(which, chosen.reshape(shape), drawn.reshape(shape)), tuple(real.tolist()), kind)

    def __len__(self) -> int:
        return len(self.tiles)

    @property
    def real_tiles(self) -> frozenset[int]:
        """The answer key: the numbers of the real tiles. The server's alone until a player is scored."""
        return self._real

    def read_marks(self, marked_real: object) -> frozenset[int]:
        """The tile numbers a player marked real, checked: a list, set or tuple of distinct whole numbers 1…n.
        ValueError saying what is wrong otherwise (nothing is scored or counted then)."""
        if not isinstance(marked_real, (list, tuple, set, frozenset)):
            raise ValueError(f"An answer is a list of tile numbers, not {type(marked_real).__name__}.")
        if len(marked_real) > len(self):
            raise ValueError(f"{len(marked_real)} tiles marked, but there are only {len(self)}.")
        marks: set[int] = set()
        for mark in marked_real:
            if not isinstance(mark, int) or isinstance(mark, bool):
                raise ValueError(f"Tile numbers are whole numbers from 1 to {len(self)}, not {str(mark)[:20]!r}.")
            if not 1 <= mark <= len(self):
                raise ValueError(f"There is no tile {mark}: the tiles are numbered 1 to {len(self)}.")
            if mark in marks:
                raise ValueError(f"Tile {mark} is marked more than once.")
            marks.add(mark)
        return frozenset(marks)

    def score(self, marked_real: object) -> Verdict:
        """The verdict on a player who marked ``marked_real`` (tile numbers) real; ValueError for a malformed answer."""
        return Verdict(len(self), self.read_marks(marked_real), self._real, self.sample_test())

    def sample_test(self) -> SampleTest:
        """The MMD test on this round's items (computed once, by the first player scored: 0.2 s for 2D clouds)."""
        with self._lock:
            if self._sample_test is None:
                is_real = torch.tensor([i + 1 in self._real for i in range(len(self))])
                real, model = self.tiles[is_real], self.tiles[~is_real]
                if self.kind == "points2d":
                    real, model = real.reshape(-1, 2), model.reshape(-1, 2)
                p = mmd_test(real, model)[1] if min(len(real), len(model)) >= 2 else None
                unit = "point" if self.kind == "points2d" else "image"
                self._sample_test = SampleTest(len(real), len(model), unit, p)
            return self._sample_test


@dataclass(frozen=True)
class ClassVerdict:
    """A class's answers to one round, pooled. ``votes_real[i]``: how many players marked tile i + 1 real.

    Two tests against guessing:
    - pooled: every answer counted, P[X ≥ right] for X ~ Bin(players · tiles, ½). It assumes all answers independent,
      and they are not: everyone judged the same tiles, so a tile that fools one player fools many. Its p is too
      small (optimistic) whenever players agree with one another for reasons other than the truth.
    - majority: per tile, the class's majority answer (ties left out), tested over the decided tiles: Bin(decided, ½).
      Exact under H₀ whatever the players share, because each tile's truth is a coin of its own that nothing they
      see depends on; with only ``tiles`` tiles, its power is that of one player.
    """

    players: int
    votes_real: tuple[int, ...]
    real_tiles: frozenset[int]
    sample_test: SampleTest

    @property
    def tiles(self) -> int:
        return len(self.votes_real)

    @property
    def right(self) -> int:
        """Right answers over all players: real tiles marked real, the model's left unmarked."""
        return sum(v if i + 1 in self.real_tiles else self.players - v for i, v in enumerate(self.votes_real))

    @property
    def accuracy(self) -> float:
        return self.right / max(self.players * self.tiles, 1)

    @property
    def pooled_p(self) -> float:
        return binomial_tail(self.right, self.players * self.tiles)

    @property
    def majority(self) -> tuple[int, int]:
        """(tiles the majority got right, tiles it decided: ties and unanswered tiles are left out)."""
        says_real = [(2 * v > self.players, i + 1) for i, v in enumerate(self.votes_real) if 2 * v != self.players]
        return sum(says == (tile in self.real_tiles) for says, tile in says_real), len(says_real)

    @property
    def majority_p(self) -> float:
        return binomial_tail(*self.majority)

    def summary(self) -> str:
        if self.players == 0:
            return "No answers yet."
        right, decided = self.majority
        return (
            f"{self.players} player{'s' if self.players > 1 else ''}, {self.players * self.tiles} answers: "
            f"{100 * self.accuracy:.0f} % right (pooled binomial p {_p(self.pooled_p)}, which counts every answer as "
            f"independent: optimistic, since everyone judged the same tiles). The class's majority got {right} of "
            f"{decided} tiles right (p {_p(self.majority_p)}, exact). {self.sample_test.words()}"
        )


class Tally:
    """Many players' answers to one round, added from many threads at once (a class answering a lecturer's round);
    ``result`` is the class's verdict so far. One answer per player; a refused answer changes nothing."""

    def __init__(self, game: Round) -> None:
        self.round = game
        self._lock = threading.Lock()
        self._players: set[str] = set()
        self._votes_real = [0] * len(game)

    def add(self, player: str, marked_real: object) -> Verdict:
        """Count ``player``'s answer (the tile numbers marked real) and return their own verdict; ValueError for a
        malformed answer, a second answer from the same player, or a full class."""
        if not isinstance(player, str) or not 0 < len(player) <= 200:
            raise ValueError("A player is named by a string of 1 to 200 characters.")
        verdict = self.round.score(marked_real)  # checks the answer before anything is counted
        with self._lock:
            if player in self._players:
                raise ValueError("You have answered this round already: one answer per player.")
            if len(self._players) >= MAX_PLAYERS:
                raise ValueError(f"This round has its {MAX_PLAYERS} players already.")
            self._players.add(player)
            for tile in verdict.marked_real:
                self._votes_real[tile - 1] += 1
        return verdict

    def result(self) -> ClassVerdict:
        with self._lock:
            players, votes = len(self._players), tuple(self._votes_real)
        return ClassVerdict(players, votes, self.round.real_tiles, self.round.sample_test())
