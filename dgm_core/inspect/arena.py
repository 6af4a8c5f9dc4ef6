"""Two players, one step at a time: a copy of a GAN to step the discriminator or the generator alone (GAN Lab's step
D / step G), while the run it came from stays as it was (its kept weights are the evaluated ones).

    arena = Arena(run.model, run.data.train, lr=run.spec.lr, batch_size=run.spec.batch_size)
    arena.step("discriminator", times=5)    # D learns to tell today's fakes from data: its field sharpens
    arena.step("generator")                 # G follows D's gradient: the samples move along the arrows

Alternating k discriminator steps with one generator step is what training does (k = 1 for the GAN, 5 for WGAN-GP);
stepping one player many times shows why neither may run ahead: a perfect D leaves G with vanishing gradients, a G
stepped alone against a fixed D piles its samples onto the D's favourite spot.
"""

from __future__ import annotations

import torch
from torch import Tensor

from dgm_core.learn.seeding import forked
from dgm_core.models.abilities import Players, ability
from dgm_core.models.base import GenerativeModel

PLAYERS = ("discriminator", "generator")


class Arena:
    """A GAN's two players copied out of a run, with their own optimizers and batches (``abilities.Players``).

    Arguments:
        model: the GAN to copy (left untouched).
        train: the training items to draw batches from.
        lr, batch_size: the run's settings.
        seed: seeds the arena's batches and fakes.
    """

    def __init__(self, model: GenerativeModel, train: Tensor, lr: float, batch_size: int, seed: int = 0) -> None:
        self.model = ability(model, Players).for_arena().eval()  # a copy, or a ValueError for a model without players
        self.optimizers = self.model.configure_optimizers(lr)
        self.train = train.to(self.model.device)
        self.batch_size = batch_size
        self.generator = torch.Generator().manual_seed(seed)
        self.steps = dict.fromkeys(PLAYERS, 0)
        self.losses: dict[str, float] = {}  # each player's loss at its latest step

    def step(self, player: str, times: int = 1) -> None:
        """``times`` steps of ``player`` ("discriminator" or "generator") alone, each on a fresh batch."""
        if player not in PLAYERS:
            raise ValueError(f"Step the discriminator or the generator, not {player!r}.")
        self.model.train()
        with forked(self.model.device, seed=int(torch.randint(2**31, (1,), generator=self.generator))):
            for _ in range(times):
                index = torch.randint(len(self.train), (self.batch_size,), generator=self.generator)
                self.losses[player] = self.model.step_player(
                    self.train[index.to(self.train.device)], self.optimizers, player
                )
                self.steps[player] += 1
        self.model.eval()
