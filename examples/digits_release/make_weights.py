"""Train the two releases, seeded: v1 with PGD adversarial training, v2 with plain training (more accurate on
clean digits, much less robust). ``python make_weights.py`` writes weights/v1.safetensors and v2.safetensors;
``--check`` retrains and compares with the files."""

from __future__ import annotations

import sys

import torch
import torch.nn.functional as F
from digits_model import WEIGHTS, build_model
from safetensors.torch import load_file, save_file

from robtest.attacks import pgd
from robtest.data import digits_tensors


def train(adversarial: bool, *, epochs: int = 40, eps: float = 0.1, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    x, y = digits_tensors("train")
    model = build_model()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        perm = torch.randperm(x.shape[0], generator=gen)
        for i in range(0, x.shape[0], 64):
            xb, yb = x[perm[i:i + 64]], y[perm[i:i + 64]]
            if adversarial:
                xb = pgd(model, xb, yb, eps=eps, steps=5, generator=gen)
            opt.zero_grad()
            F.cross_entropy(model(xb), yb).backward()
            opt.step()
    return model.eval()


def main() -> int:
    check = "--check" in sys.argv[1:]
    for version, adversarial in (("v1", True), ("v2", False)):
        state = {k: v.contiguous() for k, v in train(adversarial).state_dict().items()}
        path = WEIGHTS / f"{version}.safetensors"
        if check:
            saved = load_file(path)
            same = saved.keys() == state.keys() and all(torch.equal(saved[k], state[k]) for k in state)
            print(f"{path.name}: {'same' if same else 'DIFFERENT'}")
            if not same:
                return 1
        else:
            WEIGHTS.mkdir(exist_ok=True)
            save_file(state, path)
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
