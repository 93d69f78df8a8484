"""On a CUDA device the bounds run where the model is and agree with the CPU's (skipped without one)."""

from __future__ import annotations

import copy

import pytest
import torch

from robtest.certify import IBPTrainer, certify
from robtest.data import digits_tensors
from tests.certify._nets import digits_cnn

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.mark.parametrize("method", ["ibp", "crown", "alpha-crown", "milp"])
@pytest.mark.parametrize("norm, eps", [("linf", 0.1), ("l2", 0.3)])
def test_certify_on_cuda_matches_the_cpu(plain_cnn, method, norm, eps):
    x, y = digits_tensors("test")
    x, y = x[:12], y[:12]
    gpu = copy.deepcopy(plain_cnn).cuda()
    cpu = certify(plain_cnn, x, y, eps=eps, norm=norm, method=method, time_limit=5)
    on_gpu = certify(gpu, x, y, eps=eps, norm=norm, method=method, time_limit=5)  # data on the host
    assert on_gpu.certified.device.type == "cpu" and next(gpu.parameters()).is_cuda
    assert torch.allclose(cpu.lower, on_gpu.lower, rtol=1e-8, atol=1e-8)
    assert torch.equal(cpu.certified, on_gpu.certified)
    data_on_gpu = certify(gpu, x.cuda(), y.cuda(), eps=eps, norm=norm, method=method, time_limit=5)
    assert data_on_gpu.certified.is_cuda and torch.equal(data_on_gpu.certified.cpu(), cpu.certified)


def test_ibp_training_step_on_cuda():
    model = digits_cnn().cuda()
    x, y = digits_tensors("train")
    x, y = x[:64].cuda(), y[:64].cuda()
    loss = IBPTrainer(model, x, eps=0.1).loss(x, y, progress=0.5)
    loss.backward()
    assert loss.is_cuda and all(p.grad is not None and p.grad.is_cuda for p in model.parameters())
