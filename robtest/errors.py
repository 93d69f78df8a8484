"""Exceptions and warnings robtest raises for users.

Every message says what was expected, what came, and what to do. This module imports only the standard
library, so the pytest plugin can name these classes (for example in ``filterwarnings``) without importing
torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from robtest.fuzz import InvarianceCheck

__all__ = [
    "RobtestError",
    "BaselineError",
    "InvalidArgument",
    "InputError",
    "ModelOutputError",
    "DatasetNotFoundError",
    "UnsafeCheckpointError",
    "AttackInvariantError",
    "DistributedError",
    "UnsupportedModelError",
    "InvarianceError",
    "RobustnessWarning",
    "EvaluationWarning",
    "ModelStateWarning",
    "BatchSplitWarning",
]


class RobtestError(Exception):
    """Base class of every error robtest raises on purpose."""


class InvalidArgument(RobtestError, ValueError):
    """An argument has the wrong type or value (eps < 0, unknown attack, unknown marker option...)."""


class DistributedError(RobtestError, RuntimeError):
    """Under torchrun, another rank failed or stopped answering during an exchange; the message names it."""


class InputError(RobtestError, ValueError):
    """Data given to robtest has the wrong shape, dtype, range or labels."""


class ModelOutputError(RobtestError, ValueError):
    """The model returned something robtest cannot evaluate (wrong shape, NaN, infinities)."""


class DatasetNotFoundError(RobtestError, FileNotFoundError):
    """A local dataset path does not exist. robtest never downloads data."""


class UnsafeCheckpointError(RobtestError):
    """A weight file needs unpickling arbitrary objects, which robtest refuses unless told otherwise."""


class AttackInvariantError(RobtestError, AssertionError):
    """An attack returned an example outside the ε-ball or the box: a bug in robtest, please report it."""


class UnsupportedModelError(RobtestError, TypeError):
    """The bound engine (:mod:`robtest.certify`) cannot certify this model: a layer or operation it has no
    sound bound for (max-pooling, tanh, rounding...). The message names it; the attack-only verdict still works."""


class BaselineError(RobtestError, ValueError):
    """A baseline file that cannot be used (missing, not JSON, another schema)."""


# Not a RobtestError: it is the failed assertion of a user's test (pytest shows it as one, with the test's own
# traceback and hypothesis's falsifying example), not an error robtest reports in place of the test.
class InvarianceError(AssertionError):
    """A perturbation changed predictions it should not have. ``check`` holds the numbers, ``artifacts`` the folder."""

    def __init__(self, message: str, check: InvarianceCheck, artifacts: Path | None = None) -> None:
        super().__init__(message)
        self.check = check
        self.artifacts = artifacts


class RobustnessWarning(UserWarning):
    """Base class of robtest's warnings; ``-W error::robtest.RobustnessWarning`` turns them into errors."""


class EvaluationWarning(RobustnessWarning):
    """The evaluation itself looks broken: its numbers would not mean what they say.

    Examples: the model returns probabilities instead of logits, gradients are zero (gradient masking),
    ε looks like it is in normalised or 0–255 units. Under ``pytest --robust`` these are errors by default.
    """


class ModelStateWarning(RobustnessWarning):
    """The model was in a state robtest had to change for the evaluation (e.g. train mode); it was restored."""


class BatchSplitWarning(RobustnessWarning, ResourceWarning):
    """A batch did not fit in memory and was split in halves and retried; results are unchanged, only slower.

    Pass a smaller ``batch_size`` to avoid the failed first attempt.
    """
