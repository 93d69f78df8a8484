"""Loading weights without running untrusted code."""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path

import torch
from torch import nn

from robtest.errors import DatasetNotFoundError, InputError, RobustnessWarning, UnsafeCheckpointError

__all__ = ["load_state_dict", "load_weights"]


# Keys under which training scripts commonly save the state dict inside a checkpoint dict.
WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "net", "network", "module")
# Prefixes that wrappers add to every key: nn.DataParallel / DistributedDataParallel, torch.compile.
WRAPPER_PREFIXES = ("module.", "_orig_mod.")


def _is_state_dict(obj: object) -> bool:
    return isinstance(obj, dict) and bool(obj) and all(isinstance(v, torch.Tensor) for v in obj.values())


def _unwrap(obj: dict, p: Path, key: str | None) -> dict:
    """The state dict inside a checkpoint dict: ``obj[key]``, or the one entry of :data:`WRAPPER_KEYS` that holds
    a state dict; anything else is an error naming the keys found."""
    keys = ", ".join(repr(k) for k in list(obj)[:12]) + (", ..." if len(obj) > 12 else "")
    if key is not None:
        if key not in obj:
            raise InputError(f"weights: expected an entry {key!r} in '{p}' but its keys are {keys}")
        obj = obj[key].state_dict() if isinstance(obj[key], nn.Module) else obj[key]
        if not _is_state_dict(obj):
            raise InputError(f"weights: expected a state dict (names -> tensors) under {key!r} in '{p}' but got "
                             f"{type(obj).__name__}")
        return obj
    if _is_state_dict(obj) or not obj:
        return obj
    inner = {k: v.state_dict() if isinstance(v, nn.Module) else v for k, v in obj.items() if k in WRAPPER_KEYS}
    found = [k for k, v in inner.items() if _is_state_dict(v)]
    if len(found) == 1:
        return inner[found[0]]
    if any(isinstance(v, torch.Tensor) for v in obj.values()) and not found:
        return obj  # a state dict with some non-tensor extra state: load_state_dict judges it
    which = (f"several entries hold state dicts ({', '.join(map(repr, found))})" if found else
             "no entry is a state dict (names -> tensors)")
    raise InputError(f"weights: expected a state dict in '{p}' but got a checkpoint dict with keys {keys} in which "
                     f"{which}; pass key='...' naming the entry that holds the model's weights")


def load_state_dict(path: str | Path, *, allow_pickle: bool = False, key: str | None = None
                    ) -> dict[str, torch.Tensor]:
    """Read a state dict from ``.safetensors`` or a torch file with ``weights_only=True``.

    A torch checkpoint that needs arbitrary unpickling (a whole pickled model, custom classes) is refused with
    :class:`UnsafeCheckpointError` unless ``allow_pickle=True``: unpickling runs code from the file.

    A training checkpoint (a dict such as ``{'model': sd, 'epoch': 3, 'optimizer': ...}``) is unwrapped when
    exactly one of its entries named in :data:`WRAPPER_KEYS` (``state_dict``, ``model_state_dict``, ``model``,
    ``net``, ``network``, ``module``) holds a state dict; ``key`` names the entry when that is ambiguous (e.g.
    ``key='ema'``). Otherwise :class:`InputError` lists the keys found.
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
    if not isinstance(obj, dict):
        raise UnsafeCheckpointError(f"weights: expected a state dict in '{p}' but got {type(obj).__name__}")
    return _unwrap(obj, p, key)


def _strip_prefixes(sd: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """Drop a wrapper's prefix (``module.``, ``_orig_mod.``) from every key when all keys carry it and none of
    the model's own keys does: then the prefix cannot name a submodule of this model."""
    own = list(model.state_dict())
    changed = True
    while changed and sd:
        changed = False
        for prefix in WRAPPER_PREFIXES:
            if all(k.startswith(prefix) for k in sd) and not any(k.startswith(prefix) for k in own):
                sd = {k[len(prefix):]: v for k, v in sd.items()}
                changed = True
    return sd


def _mismatch(model: nn.Module, sd: dict[str, torch.Tensor], p: Path, err: RuntimeError, strict: bool
              ) -> InputError:
    own = set(model.state_dict())
    missing, unexpected = (sorted(own - set(sd)), sorted(set(sd) - own)) if strict else ([], [])

    def some(keys: list[str]) -> str:
        return ", ".join(repr(k) for k in keys[:3]) + (", ..." if len(keys) > 3 else "")

    if missing or unexpected:
        parts = [f"{len(missing)} missing ({some(missing)})" if missing else "",
                 f"{len(unexpected)} unexpected ({some(unexpected)})" if unexpected else ""]
        firsts = {k.split(".", 1)[0] + "." for k in sd if "." in k}
        hint = "check that the weights belong to this architecture, or pass strict=False to load a part"
        if unexpected and len(firsts) == 1 and len(sd) == sum("." in k for k in sd):
            pre = firsts.pop()
            hint = (f"every key in the file starts with {pre!r}: load "
                    f"{{k.removeprefix({pre!r}): v for k, v in sd.items()}} into the model instead")
        return InputError(
            f"weights: expected the {len(own)} keys of {type(model).__name__}'s state dict in '{p}' but "
            f"{' and '.join(x for x in parts if x)} keys; {hint}")
    said = "; ".join(line.strip() for line in str(err).splitlines()[1:3] if line.strip())
    return InputError(f"weights: expected tensors of the model's shapes in '{p}' but {said}; check that the "
                      "weights belong to this architecture")


def load_weights(model: nn.Module, path: str | Path, *, allow_pickle: bool = False, strict: bool = True,
                 key: str | None = None) -> nn.Module:
    """Load weights from ``path`` into ``model`` (safely, see :func:`load_state_dict`) and return the model.

    Checkpoints are unwrapped as :func:`load_state_dict` says (``key`` picks the entry). Keys saved from a
    wrapped model, all starting with ``module.`` (``nn.DataParallel``) or ``_orig_mod.`` (``torch.compile``),
    are stripped of that prefix when none of ``model``'s own keys starts with it. Keys or shapes that still do
    not fit raise :class:`InputError` naming the missing and unexpected keys.
    """
    p = Path(path)
    sd = _strip_prefixes(load_state_dict(p, allow_pickle=allow_pickle, key=key), model)
    try:
        model.load_state_dict(sd, strict=strict)
    except RuntimeError as err:
        raise _mismatch(model, sd, p, err, strict) from None
    return model
