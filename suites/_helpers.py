"""Small helpers the suites share (plain functions; fixtures live in conftest.py)."""

from __future__ import annotations


def as_tensors(data):
    """Any data robtest accepts, as one (x, y) pair of tensors."""
    import torch

    from robtest.data import iter_batches

    xs, ys = zip(*iter_batches(data, batch_size=1024, seed=None), strict=True)
    return torch.cat(xs), torch.cat(ys)


def task_shape(train_data):
    """(input shape, number of classes) of a training set (x, y)."""
    x, y = train_data
    return tuple(x.shape[1:]), int(y.max()) + 1


def fgsm_mistakes(model, x, y, eps):
    """FGSM at ``eps``: which points it fools, and the model's confidence on each adversarial input
    (``robtest.zoo.confidence``: max softmax, or the RBF network's one-vs-rest probability)."""
    import torch

    from robtest.attacks import fgsm
    from robtest.zoo import confidence

    xa = fgsm(model, x, y, eps=eps)
    with torch.no_grad():
        wrong = model(xa).argmax(1) != y
    return wrong, confidence(model, xa)
