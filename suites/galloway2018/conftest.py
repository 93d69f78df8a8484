"""Galloway, Taylor & Moussa, *Predicting Adversarial Examples with High Confidence* (2018): the models.

- the 3-vs-7 logistic regression of Table 1 with 32-bit (float) or k-bit weights (straight-through estimator);
- softmax regression trained by SGD with and without strong L2 weight decay (W2);
- the Table 2 CNN (``n_f`` = 4) on 28×28 images, plain and PGD-trained (ε=0.2 ramped over 8 of 12 epochs,
  3 steps; calibrated at 15 epochs, run at 12 to save time) (W1);
- the Table 2 CNN with ``n_f`` = 16, PGD-trained like W1's at Adam 1e-2, with and without L2 weight decay 0.05
  on its first and last layers (W4);
- the spheres MLP, full precision and 1-bit weights / 2-bit activations (W5).

Data: the --robust-data training split; for the 28×28 CNN the digits are upsampled (``digits28``) unless the
data is already 28×28 or larger (MNIST, CIFAR-10).
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def pair_data(pytestconfig):
    """The 3-vs-7 task of Table 1 (labels 0 = three, 1 = seven): ``(train, test)`` tensors."""
    from robtest.data import digits_tensors

    return (digits_tensors("train", classes=(3, 7)), digits_tensors("test", classes=(3, 7)))


@pytest.fixture(scope="session")
def pair_model(zoo, pair_data):
    """``pair_model(bits, **recipe)``: the 3-vs-7 logistic regression with ``bits``-bit weights (None: float)."""
    from robtest.zoo import quantized_softmax_regression, softmax_regression

    (x, y), _ = pair_data
    shape = tuple(x.shape[1:])

    def get(bits, **recipe):
        build = ((lambda: softmax_regression(shape, 2)) if bits is None
                 else (lambda: quantized_softmax_regression(shape, 2, bits=bits)))
        tag = "-".join(f"{k}{v}" for k, v in sorted(recipe.items()))
        return zoo(f"pair37-bits{bits}-{tag}", build, data=(x, y), epochs=100, lr=1e-2, **recipe)

    return get


@pytest.fixture(scope="session")
def sgd_softmax(zoo, train_data):
    """``sgd_softmax(weight_decay)``: softmax regression trained by SGD (momentum 0.9) with that L2 penalty."""
    from robtest.zoo import softmax_regression

    x, y = train_data
    shape, k = tuple(x.shape[1:]), int(y.max()) + 1

    def get(weight_decay):
        return zoo(f"softmax-sgd-wd{weight_decay}", lambda: softmax_regression(shape, k), epochs=50, lr=1e-2,
                   optimizer="sgd", weight_decay=weight_decay)

    return get


@pytest.fixture(scope="session")
def images28(pytestconfig, train_data):
    """(train, test) image tensors of at least 28×28 for the Table 2 CNN."""
    import torch

    from robtest.data import digits_tensors, from_spec, iter_batches
    from robtest.options import OPTIONS

    if train_data[0].shape[-1] >= 28:
        test = from_spec(pytestconfig.stash[OPTIONS].data, split="test")
        xs, ys = zip(*iter_batches(test, batch_size=1024, seed=None), strict=True)
        return train_data, (torch.cat(xs), torch.cat(ys))
    return digits_tensors("train", size=28), digits_tensors("test", size=28)


@pytest.fixture(scope="session")
def table2_cnn(zoo, images28):
    """``table2_cnn(recipe_name)``: the Table 2 CNN, ``"plain"`` or ``"pgd"`` (Madry et al.'s recipe at ε=0.2)."""
    from robtest.zoo import galloway_cnn

    (x, y), _ = images28
    recipes = {
        "plain": {},
        "pgd": {"adversarial": "pgd", "eps": 0.2, "eps_ramp": 8, "pgd_steps": 3},
    }

    def get(name):
        return zoo(f"table2cnn4-{name}", lambda: galloway_cnn(x.shape[1], int(y.max()) + 1, n_f=4,
                                                             input_size=x.shape[-1]),
                   data=(x, y), epochs=12, lr=2e-3, **recipes[name])

    return get


@pytest.fixture(scope="session")
def w4_cnn(zoo, images28):
    """``w4_cnn(weight_decay)``: the Table 2 CNN with ``n_f`` = 16, PGD-trained (ε=0.2 ramped over 8 of 12 epochs,
    3 steps, Adam 1e-2) with L2 weight decay ``weight_decay`` on its first and last layers (Figure 7's recipe).

    Adam 1e-2 rather than W1's 2e-3: weight decay needs steps to switch filters off, and at 2e-3 no filter falls
    below .45 of the largest within 12 epochs (seed 0)."""
    from robtest.zoo import first_and_last_layers, galloway_cnn

    (x, y), _ = images28

    def build():
        return galloway_cnn(x.shape[1], int(y.max()) + 1, n_f=16, input_size=x.shape[-1])

    def get(weight_decay):
        return zoo(f"table2cnn16-pgd-wd{weight_decay}", build, data=(x, y), epochs=12, lr=1e-2, adversarial="pgd",
                   eps=0.2, eps_ramp=8, pgd_steps=3, weight_decay=weight_decay,
                   weight_decay_on=first_and_last_layers(build()))

    return get


@pytest.fixture(scope="session")
def spheres_task(robust_seed):
    """Figure 5's 2-D spheres (radii 1 and 1.3): train without two opposing quadrants, test on the whole."""
    from robtest.data import spheres

    return (spheres(1000, dim=2, support="quadrants", seed=robust_seed),
            spheres(4000, dim=2, seed=10_000 + robust_seed))


@pytest.fixture(scope="session")
def spheres_model(zoo, spheres_task):
    """``spheres_model(low_precision)``: the 64-64 spheres MLP, full precision or 1-bit weights/2-bit activations."""
    from robtest.zoo import spheres_mlp

    train, _ = spheres_task

    def get(low_precision):
        build = (lambda: spheres_mlp(2, weight_bits=1, act_bits=2)) if low_precision else (lambda: spheres_mlp(2))
        return zoo(f"spheres2-quadrants-{'w1a2' if low_precision else 'fp'}", build, data=train, epochs=30, lr=1e-2)

    return get
