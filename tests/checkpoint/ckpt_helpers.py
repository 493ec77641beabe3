"""Tiny models and training states built in the tests themselves."""

from __future__ import annotations

from typing import Any

import torch


class TinyNet(torch.nn.Module):
    def __init__(self, vocab: int = 16, dim: int = 8, tie: bool = False) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(vocab, dim)
        self.hidden = torch.nn.Linear(dim, dim)
        self.norm = torch.nn.LayerNorm(dim)
        self.head = torch.nn.Linear(dim, vocab, bias=False)
        self.register_buffer("counter", torch.zeros((), dtype=torch.int64))
        if tie:
            self.head.weight = self.embed.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.norm(torch.relu(self.hidden(self.embed(x)))))


def make_state(seed: int = 0, tie: bool = False) -> dict[str, Any]:
    torch.manual_seed(seed)
    model = TinyNet(tie=tie)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    return {"model": model, "optimizer": opt, "scheduler": sched}


def train_steps(state: dict[str, Any], n: int) -> list[float]:
    model, opt, sched = state["model"], state["optimizer"], state["scheduler"]
    losses = []
    for _ in range(n):
        x = torch.randint(0, 16, (4, 5))
        loss = torch.nn.functional.cross_entropy(model(x).flatten(0, 1), x.flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        model.counter += 1
        losses.append(float(loss.detach()))
    return losses


def assert_same_tensors(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert list(a) == list(b)
    for key in a:
        assert a[key].dtype == b[key].dtype, key
        assert torch.equal(a[key], b[key]), key
