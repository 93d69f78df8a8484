"""Reference models for the fuzzing suite: an MLP on the upsampled (28×28) digits, trained plain and with FGSM
adversarial training (Goodfellow et al. 2015, ε=0.3), a few seconds each on a CPU.

This suite pins its data to the digits upsampled to 28×28 whatever --robust-data says: the DC-offset blind spot
of Galloway et al. 2018 (claim W1) shows where most pixels are background, as in MNIST.
"""

from __future__ import annotations

import pytest

FGSM_EPS = 0.3
EPOCHS = 20


def _train(adversarial: bool, seed: int):
    import torch
    import torch.nn.functional as F

    from robtest.attacks import fgsm
    from robtest.data import digits_tensors
    from robtest.zoo import mlp

    x, y = digits_tensors("train", size=28)
    prev_denormal, prev_threads = (torch.tensor([1e-38]) * 0.01).item() == 0, torch.get_num_threads()
    torch.set_flush_denormal(True)  # denormal floats slow CPU training many-fold
    torch.set_num_threads(1)  # small batches: threads cost more than they bring, worse on a shared machine
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = mlp((1, 28, 28), 10, hidden=(128,))
            opt = torch.optim.Adam(model.parameters(), lr=3e-3)
            g = torch.Generator().manual_seed(seed)
            for _ in range(EPOCHS):
                perm = torch.randperm(len(y), generator=g)
                for i in range(0, len(y), 64):
                    xb, yb = x[perm[i:i + 64]], y[perm[i:i + 64]]
                    loss = F.cross_entropy(model(xb), yb)
                    if adversarial:  # α·J(x) + (1 − α)·J(x + ε·sign ∇J), α = 0.5
                        xa = fgsm(model, xb, yb, eps=FGSM_EPS)
                        loss = 0.5 * loss + 0.5 * F.cross_entropy(model(xa), yb)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
    finally:
        torch.set_flush_denormal(prev_denormal)
        torch.set_num_threads(prev_threads)
    for p in model.parameters():
        p.grad = None
    return model.eval()


@pytest.fixture(scope="session")
def robust_model(robust_seed):
    """The model under test: FGSM adversarially trained (ε=0.3)."""
    return _train(True, robust_seed)


@pytest.fixture(scope="session")
def plain_model(robust_seed):
    """The same MLP and recipe without adversarial training: the contrast."""
    return _train(False, robust_seed)


@pytest.fixture(scope="session")
def robust_data():
    from robtest.data import digits

    return digits("test", size=28)
