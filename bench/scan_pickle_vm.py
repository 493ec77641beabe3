"""Benchmark: cairn's symbolic pickle walk against the standard library's ``pickletools.genops``.

genops only decodes opcodes (no stack, no memo, stops at the first broken byte); the walk also evaluates
them. The ratio says what the full symbolic evaluation costs over bare decoding. Run:
``.venv/bin/python bench/scan_pickle_vm.py``.
"""

from __future__ import annotations

import io
import pickletools
import time
import zipfile

from cairn.format.pickle_vm import walk


def _torch_pickle(layers: int) -> bytes:
    import torch

    model = torch.nn.Sequential(*[torch.nn.Linear(4, 4) for _ in range(layers)])
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    with zipfile.ZipFile(buf) as zf:
        return zf.read(next(n for n in zf.namelist() if n.endswith("/data.pkl")))


def _best(fn: object, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    for layers in (10, 1000):
        data = _torch_pickle(layers)
        ours = _best(lambda data=data: walk(data))
        base = _best(lambda data=data: sum(1 for _ in pickletools.genops(data)))
        print(
            f"state dict of {2 * layers} tensors ({len(data)} B pickle): walk {ours * 1e3:.2f} ms, "
            f"genops {base * 1e3:.2f} ms, ratio walk/genops {ours / base:.2f}"
        )


if __name__ == "__main__":
    main()
