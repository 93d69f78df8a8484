"""Device discipline without a GPU (STYLE rule 11; issue 19): robtest's public paths under the device guard
(tests/device_guard.py), the crashes a GPU run showed reproduced on the CPU, and the model given back where it
was (device, mode, requires_grad), also when an exception leaves the evaluation.

The ``meta`` device stands in for a second device where robtest moves a model and reads nothing back.
"""

from __future__ import annotations

import traceback

import pytest
import torch
from torch import nn

from robtest.data import digits_tensors
from robtest.session import RobustSession
from tests.device_guard import META, ROBTEST, SUITES, DeviceGuardError, device_guard

N = 24  # points per evaluation: the guard is about where tensors live, not about the numbers


@pytest.fixture(scope="module")
def digits():
    x, y = digits_tensors("test")
    return x[:N], y[:N]


@pytest.fixture(scope="module")
def linear():
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 10)).eval()


def _state(model: nn.Module) -> list[tuple[str, torch.device, bool, bool]]:
    """Where every parameter and buffer is, whether it needs a gradient, and each submodule's mode."""
    out = [(n, p.device, p.requires_grad, True) for n, p in model.named_parameters()]
    out += [(n, b.device, False, True) for n, b in model.named_buffers()]
    return out + [(n, torch.device("cpu"), False, m.training) for n, m in model.named_modules()]


# -- the guard itself ---------------------------------------------------------------------------------------------

def test_the_guard_catches_what_a_gpu_run_would():
    """A tensor made without a device in robtest's code, mixed with the data; a CPU generator drawing for
    another device; the test's own tensors are left alone."""
    x = torch.zeros(3)
    with device_guard(roots=(ROBTEST, __file__)):
        made = torch.zeros(3)
        assert made.device == META
        with pytest.raises(DeviceGuardError, match="mixes tensors"):
            _ = x + made
        with pytest.raises(DeviceGuardError, match="mixes tensors"):
            _ = x[torch.arange(2)]  # torch itself reads garbage here
        with pytest.raises(DeviceGuardError, match="generator on cpu"):
            torch.rand(3, generator=torch.Generator())
        assert torch.rand(3, generator=torch.Generator(), device="cpu").device.type == "cpu"
        assert torch.as_tensor(x).device.type == "cpu"  # a tensor keeps its device
    with device_guard():  # this file is not robtest's: untouched
        assert torch.zeros(3).device.type == "cpu"


# -- robtest's public paths under the guard ------------------------------------------------------------------------

def _attack_options(name: str, surrogate: nn.Module) -> dict:
    return {"pgd": {"steps": 3}, "apgd": {"steps": 3}, "apgd-t": {"steps": 3, "targets": 2},
            "square": {"queries": 6}, "auto": {"steps": 3, "targets": 2, "queries": 6},
            "transfer": {"surrogate": surrogate, "steps": 2}}.get(name, {})


def test_every_attack_under_the_guard(digits, linear):
    from robtest.attacks import available_attacks, get_attack
    from robtest.rng import SampleRNG

    x, y = digits
    surrogate = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    before = _state(linear)
    for name in available_attacks():
        spec = get_attack(name)
        for gen in (SampleRNG(0, torch.arange(N)), torch.Generator().manual_seed(0), None):
            with device_guard():
                xa = spec.fn(linear, x, y, eps=0.1, generator=gen, **_attack_options(name, surrogate))
            assert xa.shape == x.shape and xa.device == x.device, name
    assert _state(linear) == before


def test_every_attack_through_evaluate_accuracy_under_the_guard(digits, linear):
    from robtest.attacks import available_attacks
    from robtest.evaluate import evaluate_accuracy

    surrogate = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    for name in (None, *available_attacks()):
        opts = _attack_options(name, surrogate) if name else {}
        with device_guard():
            m = evaluate_accuracy(linear, digits, attack=name, eps=0.1 if name else 0.0, device="cpu",
                                  batch_size=16, checks=name == "pgd", **opts)
        assert m.n == N
    with device_guard():  # EOT, bf16 autocast, channels-last
        evaluate_accuracy(linear, digits, attack="fgsm", eps=0.1, device="cpu", eot=2, precision="bf16",
                          channels_last=True)


def test_every_property_of_a_session_under_the_guard(digits, linear):
    """Each method of the ``robust`` fixture (and so each marker), sequential where it can be."""
    import robtest.strategies as rst

    with device_guard(), RobustSession(linear, digits, device="cpu", batch_size=16) as robust:
        robust.accuracy(attack="pgd", eps=0.1, steps=2)
        robust.accuracy_floor(eps=0.1, floor=0.0, attack="fgsm", sequential=True)
        robust.accuracy_floor(eps=0.1, floor=0.0, attack="pgd", steps=2, max_samples=16)
        for source in ("fooling", "uniform", "gaussian"):
            robust.confidence_ceiling(ceiling=1.0, source=source, samples=8, steps=2)
        robust.confidence_ceiling(ceiling=0.5, source="uniform", samples=32, sequential=True, statistic="max")
        robust.offset_invariance(max_drop=1.0, grid=3)
        robust.power_law(exponent=(0.0, 9.0), eps=(0.03, 0.12), points=6, min_errors=1, max_error=0.99)
        for estimate in ("local", "sensitivity", "global"):
            robust.lipschitz(max=1e9, estimate=estimate, steps=2)
        robust.min_perturbation(floor=0.0, bisections=2)
        for method in ("ibp", "crown", "alpha-crown"):
            robust.certified_floor(eps=0.05, floor=0.0, method=method, attack="fgsm", sequential=True)
        robust.fuzz(strategy="offsets", max_examples=3, max_flips=N)
        robust.assert_invariant(rst.Offset(0.01), max_flips=N)


def test_the_property_functions_under_the_guard(digits, linear):
    from robtest.properties import (
        SequentialCheck,
        error_curve,
        global_lipschitz_bound,
        linear_response_eps,
        logit_linearity,
        logit_ray,
        non_examples,
        offset_accuracy,
        sequential_mean,
    )
    from robtest.rng import SampleRNG

    x, y = digits
    with device_guard():
        linear_response_eps(linear, x, y)
        logit_ray(linear, x, y, eps_max=0.2, points=5)
        logit_linearity(linear, x, y, eps_max=0.2, points=5)
        offset_accuracy(linear, digits, 0.1, device="cpu")
        error_curve(linear, digits, [0.01, 0.05], device="cpu")
        global_lipschitz_bound(linear, shape=(1, 8, 8), iterations=3, device="cpu")
        for source in ("fooling", "uniform", "gaussian"):
            non_examples(linear, 4, shape=(1, 8, 8), source=source, steps=2, generator=SampleRNG(0, torch.arange(4)))
        sequential_mean([0.1, 0.2, 0.3], threshold=0.5, comparison="<=")
        SequentialCheck(n_total=N, threshold=0.5, comparison=">=").interval(10, N)


def test_the_zoo_probes_under_the_guard(digits):
    from robtest.zoo import RBFNetwork, confidence, fooling_images, logit_gaps, mlp, switched_off_filters

    x, y = digits
    for model in (mlp(hidden=(8,)).eval(), RBFNetwork().eval()):
        with device_guard(roots=(ROBTEST, SUITES)):
            from suites._helpers import fgsm_mistakes

            c = confidence(model, x)
            logit_gaps(model, x)
            fooling_images(model, x, y, steps=2)
            switched_off_filters(model[1] if isinstance(model, nn.Sequential) else model.centres)
            wrong, conf = fgsm_mistakes(model, x, y, 0.1)
        assert c.shape == conf.shape == wrong.shape == (N,)


#: Every option of ``train_classifier`` that draws or computes something of its own.
RECIPES = {
    "plain": {},
    "fgsm": {"adversarial": "fgsm", "eps": 0.1},
    "pgd": {"adversarial": "pgd", "eps": 0.1, "pgd_steps": 2, "eps_ramp": 2},
    "noise-sign": {"noise": "sign", "noise_eps": 0.1},
    "noise-uniform": {"noise": "uniform", "noise_eps": 0.1},
    "gaussian-copies": {"noise_sigma": 0.2, "noise_copies": 2},
    "penalties": {"entropy_penalty": 0.1, "label_smoothing": 0.1, "weight_decay": 1e-3,
                  "weight_decay_on": ("1",), "optimizer": "sgd"},
    "ovr": {"loss": "ovr", "reinit": True},
}


@pytest.mark.no_device_guard  # meta is its second device: the test's own moves would trip the guard
@pytest.mark.parametrize("recipe", list(RECIPES))
def test_train_classifier_under_the_guard_and_on_another_device(recipe):
    """Every recipe under the guard on the CPU, and on a second device (meta: the model and data live there and
    nothing may come from the CPU)."""
    from robtest.zoo import RBFNetwork, small_cnn, train_classifier

    x, y = digits_tensors("train")
    x, y = x[:32], y[:32]
    kw = {"epochs": 2, "batch_size": 16, **RECIPES[recipe]}
    build = RBFNetwork if recipe == "ovr" else (lambda: small_cnn(width=2))
    with device_guard():
        train_classifier(build(), x, y, **kw)
    model = build().to(META)
    train_classifier(model, x.to(META), y.to(META), **kw)
    assert {p.device for p in model.parameters()} == {META}


def test_every_fuzz_strategy_under_the_guard(digits, linear):
    import robtest.strategies as rst
    from robtest.fuzz import assert_invariant, fuzz

    x, _ = digits
    with torch.no_grad():
        pred = linear(x).argmax(1)
    options = {"linf_perturbations": {"eps": 0.1, "max_pixels": 10}, "l2_perturbations": {"eps": 0.5}}
    for name in rst.STRATEGIES:
        with device_guard():
            fuzz(linear, x, pred, name, options=options.get(name), max_examples=4, max_flips=N, database=None,
                 subset=12)
    with device_guard():
        for name in ("linf_perturbations", "l2_perturbations"):
            fuzz(linear, x, pred, name, options=options[name], max_examples=4, max_flips=N, database=None,
                 guided=True)
        check = assert_invariant(linear, x, pred, rst.GaussianNoise(0.05, seed=3), max_flips=N, subset=[0, 2, 5])
    assert check.n <= 3


def test_saving_artifacts_under_the_guard(digits, linear, tmp_path):
    import robtest.strategies as rst
    from robtest.fuzz import check_invariance, save_artifacts

    x, _ = digits
    with device_guard():
        check, xs, xp = check_invariance(linear, x, torch.zeros(N, dtype=torch.long), rst.Offset(0.3))
        save_artifacts(xs, xp, check, tmp_path, "guard")
    assert (tmp_path / "guard" / "failure.json").exists()


def test_every_tensor_robtest_makes_names_its_device():
    """A static twin of the guard for what it cannot see on a CPU-only machine: every ``torch.Generator`` robtest
    makes, and every tensor factory outside a module's constructor, names its device (``device="cpu"`` for
    bookkeeping on the host). A module's constructor follows torch's convention (the default device, so that
    ``with torch.device("cuda"): RBFNetwork()`` builds on CUDA)."""
    import ast
    import pathlib

    factories = {"arange", "as_tensor", "asarray", "empty", "eye", "full", "linspace", "ones", "rand", "randint",
                 "randn", "randperm", "tensor", "zeros", "Generator"}
    constructors = {("robtest/zoo/models.py", "__init__"), ("robtest/models.py", "__init__")}
    missing = []
    for path in sorted(pathlib.Path(ROBTEST).rglob("*.py")):
        rel = path.relative_to(pathlib.Path(ROBTEST).parent).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for fn in ast.walk(tree):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)) or (rel, fn.name) in constructors:
                continue
            for node in ast.walk(fn):
                if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                        and isinstance(node.func.value, ast.Name) and node.func.value.id == "torch"
                        and node.func.attr in factories and not any(k.arg == "device" for k in node.keywords)):
                    missing.append(f"{rel}:{node.lineno} torch.{node.func.attr}")
    assert not missing, "name the device (the data's, the model's, or device='cpu'):\n" + "\n".join(
        sorted(set(missing)))


# -- the six crashes of issue 19 (a GPU run of the suites and of train_classifier), reproduced on the CPU -----------
#
# On the GPU, `pytest --robust suites/` kept each module's model on CUDA for the module's `robust` session, and the
# suites' own measurements (FGSM mistakes and their confidence) then met it with CPU tensors. Here a session on the
# meta device stands in for the GPU: it must leave the model where it was between its properties.

def _claim(*args, **kwargs) -> None:
    """The suites' ``claim`` fixture, recording nothing."""


@pytest.fixture(scope="module")
def suite_models():
    """The suites' models in miniature: the same architectures and recipes, fewer epochs."""
    from robtest.zoo import RBFNetwork, mlp, softmax_regression, train_classifier

    x, y = digits_tensors("train")
    return {
        "softmax": train_classifier(softmax_regression(), x, y, epochs=50, lr=1e-2, batch_size=128, reinit=True),
        "mlp": train_classifier(mlp(), x, y, epochs=5, lr=1e-3, reinit=True),
        "mlp-fgsm": train_classifier(mlp(), x, y, epochs=20, lr=1e-3, adversarial="fgsm", eps=0.1, reinit=True),
        "rbf": train_classifier(RBFNetwork(), x, y, epochs=20, lr=1e-2, loss="ovr", reinit=True),
    }


def _beside_a_session(model: nn.Module, data) -> RobustSession:
    """A module's ``robust`` session on a second device (meta: nothing can be read back from it, so no property
    runs; the GPU check runs them and sees the model come back)."""
    return RobustSession(model, data, device=META)


@pytest.mark.parametrize("name", ["softmax", "mlp"])
def test_crash_g1_confidence_on_mistakes(name, suite_models):
    """Crashes 1-2: suites/goodfellow2015 G1 ``test_g1_confidence_on_mistakes[softmax]`` and ``[mlp]`` ("mat1 is on
    cpu, different from other tensors on cuda:0"; here "... on the expected device meta")."""
    from suites.goodfellow2015.test_g1_fgsm_shallow import test_g1_confidence_on_mistakes

    model, data = suite_models[name], digits_tensors("test")
    robust = _beside_a_session(model, data)  # alive while the test runs, as the module's fixture is
    test_g1_confidence_on_mistakes(model, data, _claim)
    robust.close()


def test_crash_g2_mistakes_stay_confident(suite_models):
    """Crash 3: G2 ``test_g2_mistakes_stay_confident`` (the same mismatch, on the FGSM-trained MLP)."""
    from suites.goodfellow2015.test_g2_adversarial_training import test_g2_mistakes_stay_confident

    model, data = suite_models["mlp-fgsm"], digits_tensors("test")
    robust = _beside_a_session(model, data)
    test_g2_mistakes_stay_confident(model, data, _claim)
    robust.close()


def test_crash_g6_rbf_mistakes_have_low_confidence(suite_models):
    """Crash 4: G6 ``test_g6_rbf_mistakes_have_low_confidence`` ("X1 and X2 must have the same device type",
    torch.cdist in the RBF network)."""
    from suites.goodfellow2015.test_g6_rbf_fgsm import test_g6_rbf_mistakes_have_low_confidence

    model, data = suite_models["rbf"], digits_tensors("test")
    robust = _beside_a_session(model, data)
    test_g6_rbf_mistakes_have_low_confidence(model, data, _claim)
    robust.close()


def test_crash_fuzzing_dc_offset_plain_model(suite_models):
    """Crash 5: suites/fuzzing ``test_fuzzing_finds_the_dc_offset_blind_spot`` ("mat1 is on cuda:0, different from
    other tensors on cpu"): the plain model, on the CPU, was run on the session's points, on its device."""
    from suites.fuzzing.test_dc_offset import fuzz_plain_model

    robust_model, plain_model = suite_models["mlp-fgsm"], suite_models["mlp"]
    robust = _beside_a_session(robust_model, digits_tensors("test"))
    result = fuzz_plain_model(robust, plain_model, max_offset=0.5, max_flips=54, max_examples=5)
    robust.close()
    assert result.n > 500


@pytest.mark.no_device_guard  # meta is its second device: the test's own moves would trip the guard
def test_crash_train_classifier_pgd_on_another_device():
    """Crash 6: ``train_classifier(small_cnn().cuda(), x.cuda(), y.cuda(), adversarial="pgd", eps=0.1)`` ("Expected
    all tensors to be on the same device": a CPU generator's draw for a CUDA shape); the meta device stands in."""
    from robtest.zoo import small_cnn, train_classifier

    x, y = digits_tensors("train")
    model = small_cnn(width=4).to(META)
    train_classifier(model, x[:64].to(META), y[:64].to(META), adversarial="pgd", eps=0.1, epochs=1, pgd_steps=2)
    assert {p.device for p in model.parameters()} == {META}


# -- the model comes back as it was, also when an exception leaves the evaluation ------------------------------

class _Flaky(nn.Module):
    """A small CNN with batch norm and dropout that raises on its ``fail_at``-th forward call."""

    def __init__(self, fail_at: int) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                                 nn.Conv2d(4, 4, 3, padding=1), nn.Dropout(0.1), nn.Flatten(), nn.Linear(256, 10))
        self.fail_at, self.calls = fail_at, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.calls == self.fail_at:
            raise RuntimeError("boom: the model failed mid-evaluation")
        return self.net(x)


def _prepared(fail_at: int) -> _Flaky:
    model = _Flaky(fail_at).train()  # train mode, one frozen layer, channels-last conv weights
    model.net[6].requires_grad_(False)
    model.net[3].to(memory_format=torch.channels_last)
    model.net[2].eval()  # submodules in mixed modes
    return model


def _full_state(model: nn.Module) -> list:
    fmt = [p.is_contiguous(memory_format=torch.channels_last) and not p.is_contiguous()
           for p in model.parameters()]
    return [_state(model), fmt, [t.clone() for t in model.state_dict().values()]]


def _same(a: list, b: list) -> bool:
    return a[:2] == b[:2] and all(torch.equal(u, v) for u, v in zip(a[2], b[2], strict=True))


PATHS = {
    "evaluate": lambda m, d: __import__("robtest.evaluate", fromlist=["x"]).evaluate_accuracy(
        m, d, attack="pgd", eps=0.1, steps=3, device="cpu"),
    "evaluate-bf16-channels-last": lambda m, d: __import__("robtest.evaluate", fromlist=["x"]).evaluate_accuracy(
        m, d, attack="auto", eps=0.1, steps=2, targets=1, queries=4, device="cpu", precision="bf16",
        channels_last=True),
    "session-floor": lambda m, d: RobustSession(m, d, device="cpu").accuracy_floor(eps=0.1, floor=0.0, attack="fgsm"),
    "session-offset": lambda m, d: RobustSession(m, d, device="cpu").offset_invariance(max_drop=1.0, grid=3),
    "session-lipschitz": lambda m, d: RobustSession(m, d, device="cpu").lipschitz(max=1e9, steps=2),
    "session-certified": lambda m, d: RobustSession(m, d, device="cpu").certified_floor(eps=0.05, floor=0.0,
                                                                                         attack="fgsm"),
    "session-fuzz": lambda m, d: RobustSession(m, d, device="cpu").fuzz(strategy="offsets", max_examples=3,
                                                                          max_flips=N),
    "probe-confidence": lambda m, d: __import__("robtest.zoo", fromlist=["x"]).confidence(m, d[0]),
    "probe-fooling": lambda m, d: __import__("robtest.zoo", fromlist=["x"]).fooling_images(m, d[0], d[1], steps=3),
    "attack-apgd": lambda m, d: __import__("robtest.attacks", fromlist=["x"]).apgd(m, d[0], d[1], eps=0.1, steps=3),
}


@pytest.mark.filterwarnings("ignore::robtest.errors.ModelStateWarning")
@pytest.mark.parametrize("path", list(PATHS))
def test_the_model_comes_back_as_it_was_also_after_an_exception(path, digits):
    """Mode of every submodule, requires_grad, memory format and values of every parameter and buffer (batch
    norm's running statistics included): as before, whether the evaluation ends or the model raises in it."""
    raised = 0
    for fail_at in (0, 1, 2, 4, 9):
        model = _prepared(fail_at)
        before = _full_state(model)
        try:
            PATHS[path](model, digits)
        except Exception as err:  # noqa: BLE001 - hypothesis wraps it in a group
            assert "boom" in "".join(traceback.format_exception(err))
            raised += 1
        assert _same(_full_state(model), before), (path, fail_at)
    assert raised


@pytest.mark.no_device_guard  # meta is its second device: the test's own moves would trip the guard
def test_functions_without_a_device_option_name_the_two_devices(digits):
    """An attack or a probe given a model and points on two devices says so in the user's terms (torch's own
    error would be "mat1 is on cpu, different from other tensors on cuda:0")."""
    from robtest.attacks import fgsm
    from robtest.errors import InputError
    from robtest.zoo import confidence, fooling_images

    x, y = digits
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10)).to(META)
    for call in (lambda: fgsm(model, x, y, eps=0.1), lambda: confidence(model, x),
                 lambda: fooling_images(model, x, y, steps=1)):
        with pytest.raises(InputError, match="model's device meta but got one on cpu"):
            call()


@pytest.mark.no_device_guard  # meta is its second device: the test's own moves would trip the guard
def test_a_generator_on_another_device_is_refused_in_words(digits):
    from robtest.attacks import pgd
    from robtest.errors import InvalidArgument

    x, y = digits
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10)).to(META)
    with pytest.raises(InvalidArgument, match="generator: expected a torch.Generator on x's device meta"):
        pgd(model, x.to(META), y.to(META), eps=0.1, generator=torch.Generator())
