"""A training run used by test_resume.py: run in fresh processes, it must resume bit-exactly.

usage: python resume_worker.py MODE CKPT_DIR OUT_FILE
  full     train TOTAL steps without interruption
  first    train until SAVE_AT, save a checkpoint, exit
  resume   restore the latest checkpoint in a fresh process and train to TOTAL
  resume-without-rng   the same, but leave the random generators as a fresh process has them
OUT_FILE receives the final weights, optimizer state and every batch seen (safetensors, via cairn.save).
"""

from __future__ import annotations

import random
import sys

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

import cairn

TOTAL, SAVE_AT, BATCHES_PER_EPOCH, SEED = 12, 5, 4, 1234


def main(mode: str, ckpt_dir: str, out: str) -> None:
    torch.manual_seed(SEED)
    np.random.seed(SEED)
    random.seed(SEED)
    data = TensorDataset(torch.randn(32, 6), torch.randint(0, 3, (32,)))
    model = torch.nn.Sequential(
        torch.nn.Linear(6, 16), torch.nn.Dropout(0.3), torch.nn.ReLU(), torch.nn.Linear(16, 3)
    )
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=TOTAL)
    loader_gen = torch.Generator()
    manager = cairn.CheckpointManager(ckpt_dir, async_save=True)
    step = 0
    if mode in {"resume", "resume-without-rng"}:
        result = manager.restore(
            "latest",
            model=model,
            optimizer=opt,
            scheduler=sched,
            extra={"loader": loader_gen},
            rng_state=mode == "resume",
        )
        step = int(result.metadata["data_position"]["step"])
    seen: dict[str, torch.Tensor] = {}
    while step < TOTAL:
        epoch, batch_in_epoch = divmod(step, BATCHES_PER_EPOCH)
        loader_gen.manual_seed(SEED + epoch)  # each epoch's order depends only on the epoch
        loader = DataLoader(data, batch_size=8, shuffle=True, generator=loader_gen)
        for i, (x, y) in enumerate(loader):
            if i < batch_in_epoch:
                continue  # skip what this epoch already consumed
            noise = torch.from_numpy(np.random.normal(0, 0.01, size=x.shape).astype(np.float32))
            scale = random.uniform(0.9, 1.1)
            loss = torch.nn.functional.cross_entropy(model(x * scale + noise), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            seen[f"batch{step}"] = x.clone()
            step += 1
            if mode == "first" and step == SAVE_AT:
                manager.save(
                    step,
                    model=model,
                    optimizer=opt,
                    scheduler=sched,
                    extra={"loader": loader_gen},
                    metadata={"data_position": {"step": step}},
                )
                manager.wait()
                cairn.save(out, model=seen, rng_state=False, capture_environment=False)
                return
            if step == TOTAL:
                break
    state = {f"model.{k}": v for k, v in model.state_dict().items()}
    for pid, s in opt.state_dict()["state"].items():
        state.update({f"opt.{pid}.{k}": v for k, v in s.items()})
    cairn.save(out, model={**state, **seen}, rng_state=False, capture_environment=False)


if __name__ == "__main__":
    main(*sys.argv[1:4])
