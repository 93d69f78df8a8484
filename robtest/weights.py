"""Loading weights without running untrusted code."""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path

import torch
from torch import nn

from robtest.errors import DatasetNotFoundError, RobustnessWarning, UnsafeCheckpointError

__all__ = ["load_state_dict", "load_weights"]


def load_state_dict(path: str | Path, *, allow_pickle: bool = False) -> dict[str, torch.Tensor]:
    """Read a state dict from ``.safetensors`` or a torch file with ``weights_only=True``.

    A torch checkpoint that needs arbitrary unpickling (a whole pickled model, custom classes) is refused with
    :class:`UnsafeCheckpointError` unless ``allow_pickle=True``: unpickling runs code from the file.
    """
    p = Path(path)
    if not p.is_file():
        raise DatasetNotFoundError(f"weights: expected a file at '{p}' but there is none")
    if p.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(p))
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if not allow_pickle:
            raise UnsafeCheckpointError(
                f"weights: '{p}' is not a plain tensor file; loading it would unpickle arbitrary objects, which can "
                f"run code. Save a state_dict (torch.save(model.state_dict(), path)) or safetensors, or pass "
                f"allow_pickle=True if you trust this file. (torch said: {str(exc).splitlines()[0]})"
            ) from None
        warnings.warn(f"unpickling '{p}' with weights_only=False because allow_pickle=True", RobustnessWarning,
                      stacklevel=2)
        obj = torch.load(p, map_location="cpu", weights_only=False)
    if isinstance(obj, nn.Module):
        obj = obj.state_dict()
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise UnsafeCheckpointError(f"weights: expected a state dict in '{p}' but got {type(obj).__name__}")
    return obj


def load_weights(model: nn.Module, path: str | Path, *, allow_pickle: bool = False, strict: bool = True) -> nn.Module:
    """Load weights from ``path`` into ``model`` (safely, see :func:`load_state_dict`) and return the model."""
    model.load_state_dict(load_state_dict(path, allow_pickle=allow_pickle), strict=strict)
    return model
