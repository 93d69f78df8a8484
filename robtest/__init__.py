"""robtest: adversarial-robustness testing of PyTorch models, as a pytest plugin and a Python API.

``import robtest`` is cheap: submodules that need torch (``robtest.attacks``, ``robtest.data``...) load on
first use, so the pytest plugin costs nothing in a run without ``--robust``.

>>> import robtest
>>> robtest.attacks.fgsm                                    # doctest: +ELLIPSIS
<function fgsm at ...>
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from robtest.errors import (
    AttackInvariantError,
    BatchSplitWarning,
    DatasetNotFoundError,
    EvaluationWarning,
    InputError,
    InvalidArgument,
    ModelOutputError,
    ModelStateWarning,
    RobtestError,
    RobustnessWarning,
    UnsafeCheckpointError,
    UnsupportedModelError,
)

__version__ = "0.1.0"

_SUBMODULES = {"adapters", "attacks", "certify", "data", "diagnostics", "evaluate", "models", "properties", "stats",
               "weights",
               "measurement"}
# Public names re-exported from submodules, loaded on first access.
_LAZY = {
    "evaluate_accuracy": "robtest.evaluate",
    "Measurement": "robtest.measurement",
    "Normalized": "robtest.models",
    "AsLogits": "robtest.models",
    "BPDA": "robtest.models",
    "EOT": "robtest.models",
    "load_weights": "robtest.weights",
    "Logits": "robtest.adapters",
    "timm_normalized": "robtest.adapters",
}

if TYPE_CHECKING:  # pragma: no cover
    from robtest import adapters, attacks, certify, data, models, stats, weights  # noqa: F401
    from robtest.adapters import Logits, timm_normalized  # noqa: F401
    from robtest.evaluate import evaluate_accuracy  # noqa: F401
    from robtest.measurement import Measurement  # noqa: F401
    from robtest.models import BPDA, EOT, AsLogits, Normalized  # noqa: F401
    from robtest.weights import load_weights  # noqa: F401


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"robtest.{name}")
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'robtest' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _SUBMODULES | set(_LAZY))


__all__ = [
    "AsLogits",
    "AttackInvariantError",
    "BPDA",
    "EOT",
    "BatchSplitWarning",
    "DatasetNotFoundError",
    "EvaluationWarning",
    "InputError",
    "InvalidArgument",
    "Logits",
    "Measurement",
    "ModelOutputError",
    "ModelStateWarning",
    "Normalized",
    "RobtestError",
    "RobustnessWarning",
    "UnsafeCheckpointError",
    "UnsupportedModelError",
    "__version__",
    "evaluate_accuracy",
    "load_weights",
    "timm_normalized",
]
