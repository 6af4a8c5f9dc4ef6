"""What a model costs before it trains: FLOPs counted against a case worked by hand, once per configuration."""

from __future__ import annotations

import threading
import time

import torch
from torch import Tensor, nn

from dgm_core.data import DataSpec
from dgm_core.learn import cost
from dgm_core.models.base import Capabilities, GenerativeModel


class _Square(GenerativeModel):
    """loss = Σ (W x)², one D×D matrix and nothing else."""

    capabilities = Capabilities(likelihood="none")

    def __init__(self, dim: int) -> None:
        super().__init__(DataSpec("square", "points2d", (dim,), None, (0.0,) * dim, (1.0,) * dim))
        self.weight = nn.Linear(dim, dim, bias=False)

    def loss(self, x: Tensor, labels: Tensor | None = None) -> dict[str, Tensor]:
        return {"loss": self.weight(x).square().sum()}


def test_a_train_step_costs_its_matrix_products_forward_and_backward():
    """N items through a D×D matrix: 2·N·D² forward, 2·N·D² for the weight's gradient (x needs none)."""
    n, d = 5, 3
    assert cost.train_step_flops(_Square(d), torch.randn(n, d)) == 4 * n * d * d


def test_threads_asking_at_once_count_a_configuration_once(monkeypatch):
    """After a restart every browser reloads its runs at once: they wait for one count instead of each making one."""
    counted, count = [], cost.train_step_flops

    def slow_count(*args, **kwargs) -> int:  # holds the first count open until a second starts (2 s at most)
        counted.append(1)
        deadline = time.monotonic() + 2
        while len(counted) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        return count(*args, **kwargs)

    monkeypatch.setattr(cost, "train_step_flops", slow_count)
    cost._counted_flops_per_item.cache_clear()  # not counted yet, whatever ran before
    answers = []
    askers = [
        threading.Thread(target=lambda: answers.append(cost.flops_per_item("GAN", "moons", 24, ()))) for _ in range(3)
    ]
    for asker in askers:
        asker.start()
    for asker in askers:
        asker.join()
    assert len(counted) == 1 and len(set(answers)) == 1 and answers[0] > 0
