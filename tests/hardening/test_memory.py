"""Bounded memory: a batch stepped in micro-batches equals the whole batch's step (no batch statistics)."""

from __future__ import annotations

import copy

import torch
from torch.utils.data import TensorDataset

from graft.training.loop import TrainConfig, run_loop
from graft.training.samplers import micro_batches


def test_chunks_cover_the_batch_with_their_shares() -> None:
    x, y = torch.arange(10.0)[:, None], torch.arange(10)
    parts = micro_batches((x, y), 4)
    assert [len(c[1]) for c, _ in parts] == [4, 4, 2] and sum(s for _, s in parts) == 1.0
    assert torch.equal(torch.cat([c[0] for c, _ in parts]), x)
    assert micro_batches((x, y), None) == [((x, y), 1.0)] and len(micro_batches({"a": x}, 2)) == 1


def test_micro_batches_step_exactly_as_the_whole_batch() -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    data = TensorDataset(torch.randn(64, 6), torch.randint(0, 3, (64,)))
    results = []
    for micro in (None, 5):
        m = copy.deepcopy(model)
        config = TrainConfig(epochs=2, lr=1e-2, batch_size=32, device="cpu", verbose=False, micro_batch=micro)
        run_loop(
            m,
            train_set=data,
            param_groups=[{"params": list(m.parameters()), "lr": 1e-2}],
            loss_fn=lambda mod, b: {"loss": torch.nn.functional.cross_entropy(mod(b[0]), b[1])},
            config=config,
        )
        results.append(m.state_dict())
    for k in results[0]:
        assert torch.allclose(results[0][k], results[1][k], atol=1e-6), k
