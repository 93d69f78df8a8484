"""The models people test, as robtest sees them: logits out of structured outputs (Hugging Face ``ModelOutput``,
dicts, tuples) and timm's preprocessing taken from the model's own config.

Neither ``transformers`` nor ``timm`` is imported here: the adapters read what the model returns and the
attributes it carries, so they work with any library shaped like them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from robtest.errors import InvalidArgument, ModelOutputError
from robtest.models import Normalized

__all__ = ["Logits", "logits_of", "adapt_outputs", "timm_normalized"]


def logits_of(out: Any, key: str | int | None = None) -> torch.Tensor:
    """The logits tensor inside ``out``: ``out[key]`` (a dict or ``ModelOutput`` key, a tuple index) or
    ``out.<key>`` when ``key`` is given; else the ``.logits`` attribute or ``"logits"`` key, or ``out`` itself
    when it is a tensor.

    >>> import torch
    >>> logits_of({"logits": torch.ones(1, 2), "hidden": None}).shape
    torch.Size([1, 2])
    >>> logits_of((torch.zeros(1, 3), "aux"), key=0).shape
    torch.Size([1, 3])
    """
    if key is None:
        if isinstance(out, torch.Tensor):
            return out
        if isinstance(getattr(out, "logits", None), torch.Tensor):
            return out.logits
        if isinstance(out, Mapping) and isinstance(out.get("logits"), torch.Tensor):
            return out["logits"]
        raise ModelOutputError(
            f"model output: expected a tensor of logits, or an output with a 'logits' field, but got "
            f"{type(out).__name__}; name where the logits are with robtest.Logits(model, key=...)")
    try:
        got = out[key] if isinstance(out, (Mapping, Sequence)) or hasattr(out, "__getitem__") else getattr(out, key)
    except (KeyError, IndexError, TypeError, AttributeError):
        got = getattr(out, str(key), None)
    if not isinstance(got, torch.Tensor):
        have = list(out.keys()) if isinstance(out, Mapping) else (f"{len(out)} items" if isinstance(out, Sequence)
                                                                  else type(out).__name__)
        raise ModelOutputError(f"model output: expected a tensor at key {key!r} but got {type(got).__name__} "
                               f"(the output holds {have}); pass the key or index of the logits")
    return got


class Logits(nn.Module):
    """Give robtest the logits of a model that returns a structured output.

    ``key`` names them: a dict or ``ModelOutput`` key (``"logits"``), an attribute, or a tuple index (``0``).
    Without ``key``, a ``.logits`` attribute or ``"logits"`` key is used (Hugging Face classifiers).

    >>> import torch
    >>> class HF(torch.nn.Module):
    ...     def forward(self, x):
    ...         return {"logits": x.flatten(1), "hidden_states": None}
    >>> Logits(HF())(torch.ones(2, 1, 2, 2)).shape
    torch.Size([2, 4])
    """

    def __init__(self, model: nn.Module, key: str | int | None = None) -> None:
        super().__init__()
        if not callable(model):
            raise InvalidArgument(f"Logits: expected a model (a torch.nn.Module) but got {type(model).__name__}")
        self.model, self.key = model, key

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return logits_of(self.model(x), self.key)


def adapt_outputs(model: Any, x: torch.Tensor) -> tuple[Any, str]:
    """``model`` itself when it returns a tensor for ``x`` (a sample batch), else wrapped in :class:`Logits` when
    its output has an unambiguous ``logits`` field, with a note saying so ("" when nothing was done). Any other
    output is left for robtest's own check to refuse with its message.

    >>> import torch
    >>> class HF(torch.nn.Module):
    ...     def forward(self, x):
    ...         return {"logits": x.flatten(1)}
    >>> m, note = adapt_outputs(HF(), torch.ones(1, 1, 2, 2))
    >>> type(m).__name__, note
    ('Logits', "the model returns dict: robtest reads its 'logits' field (robtest.Logits)")
    """
    if isinstance(model, Logits) or not isinstance(model, nn.Module):
        return model, ""
    try:
        with torch.no_grad():
            out = model(x)
    except RuntimeError:  # a data mistake: robtest's first forward pass translates it into a message
        return model, ""
    if isinstance(out, torch.Tensor):
        return model, ""
    try:
        logits_of(out)
    except ModelOutputError:
        return model, ""
    return Logits(model), f"the model returns {type(out).__name__}: robtest reads its 'logits' field (robtest.Logits)"


def timm_normalized(model: nn.Module, *, mean: Sequence[float] | None = None,
                    std: Sequence[float] | None = None) -> tuple[Normalized, tuple[int, ...]]:
    """A timm model behind the normalisation of its own config (``pretrained_cfg`` mean and std), so robtest
    attacks pixels in [0, 1], and the input size (C, H, W) it expects. ``mean`` / ``std`` override the config's.

    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 2))
    >>> net.pretrained_cfg = {"mean": (0.5, 0.5, 0.5), "std": (0.25, 0.25, 0.25), "input_size": (3, 2, 2)}
    >>> wrapped, size = timm_normalized(net)
    >>> size, wrapped.std.flatten().tolist()
    ((3, 2, 2), [0.25, 0.25, 0.25])
    """
    cfg = dict(getattr(model, "pretrained_cfg", None) or getattr(model, "default_cfg", None) or {})
    if not cfg and (mean is None or std is None):
        raise InvalidArgument(f"timm_normalized: expected a timm model (with a pretrained_cfg holding mean and std) "
                              f"but {type(model).__name__} has none; pass mean= and std= or use robtest.Normalized")
    mean = tuple(mean if mean is not None else cfg.get("mean", ()))
    std = tuple(std if std is not None else cfg.get("std", ()))
    size = tuple(int(v) for v in cfg.get("input_size", ()))
    channels = _in_channels(model)
    if channels is not None and len(mean) != channels:
        raise InvalidArgument(
            f"timm_normalized: the config's mean and std have {len(mean)} channels but the model takes {channels} "
            f"(built with in_chans={channels}?); pass mean= and std= with {channels} values each")
    if channels is not None and size and size[0] != channels:
        size = (channels, *size[1:])
    return Normalized(model, mean, std), size


def _in_channels(model: nn.Module) -> int | None:
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            return m.in_channels
    return None
