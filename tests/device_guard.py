"""A CPU stand-in for a GPU run: catches, without a GPU, the tensors robtest makes on the wrong device.

On a CUDA machine the bugs of this class show as device mismatches ("mat1 is on cpu, different from other
tensors on cuda:0"); on a CPU-only machine everything is on the CPU and they hide. :func:`device_guard` makes
them loud on the CPU:

- a tensor robtest's own code creates without naming a device (``torch.zeros(n)``, ``torch.tensor(list)``,
  ``torch.rand(shape, generator=g)``) is created on the ``meta`` device, as under
  ``torch.set_default_device("meta")``, but only for calls made from the guarded source folders (robtest's
  own, by default), so the test's own data and torch's internals are untouched (and so are a module's
  constructor's parameters, which follow the default device as torch's layers do);
- an operation that mixes a ``meta`` tensor with a real one raises :class:`DeviceGuardError` at once (torch
  itself does not always: indexing a CPU tensor with a meta index reads garbage), and so does reading one
  (``.item()``, ``.tolist()``: torch raises);
- a random draw whose ``torch.Generator`` lives on another device than the tensor it fills raises (a CPU
  generator drawing for a CUDA shape fails on a GPU; for a ``meta`` shape torch says nothing).

Set ``ROBTEST_DEVICE_GUARD=1`` to run every test of the suite under the guard (tests/conftest.py); the guard's
own tests (tests/test_devices.py) run their sweep under it always. The ``meta`` device also stands in for a
second device where robtest must move a model and nothing is read back (a session's device, a training run).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator, Sequence

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._device import _device_constructors
from torch.utils._pytree import tree_flatten

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROBTEST = os.path.join(ROOT, "robtest") + os.sep
SUITES = os.path.join(ROOT, "suites") + os.sep
META = torch.device("meta")

_TORCH = os.path.dirname(os.path.abspath(torch.__file__)) + os.sep
_HERE = os.path.abspath(__file__)
_FACTORIES = _device_constructors()
# as_tensor(t) of a tensor keeps t's device: only data that is not yet a tensor needs a device named.
_KEEP_TENSOR_DEVICE = {torch.as_tensor, torch.asarray}


class DeviceGuardError(AssertionError):
    """robtest made a tensor on the wrong device (what a GPU run would have shown as a device mismatch)."""


def _caller() -> str:
    """The file of the code that called the torch function (torch's own Python code counts as torch's: an
    optimiser's step counter is not robtest's tensor)."""
    f = sys._getframe(2)
    while f is not None and os.path.abspath(f.f_code.co_filename) == _HERE:
        f = f.f_back
    if f is None:
        return ""
    if f.f_code.co_name == "__init__" and isinstance(f.f_locals.get("self"), torch.nn.Module):
        return ""  # a module's constructor builds on the default device, as torch's layers do
    name = os.path.abspath(f.f_code.co_filename)
    return "" if name.startswith(_TORCH) else name


def _where() -> str:
    f = sys._getframe(2)
    while f is not None:
        name = os.path.abspath(f.f_code.co_filename)
        if name != _HERE and not name.startswith(_TORCH):
            return f"{os.path.relpath(name, ROOT)}:{f.f_lineno}"
        f = f.f_back
    return "?"


class _Guard(TorchFunctionMode):
    def __init__(self, roots: Sequence[str]) -> None:
        super().__init__()
        self.roots = tuple(roots)

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        __tracebackhide__ = True
        kwargs = dict(kwargs or {})
        name = getattr(func, "__name__", str(func))
        made = ""
        if func in _FACTORIES and kwargs.get("device") is None:
            keeps = func in _KEEP_TENSOR_DEVICE and args and isinstance(args[0], torch.Tensor)
            if not keeps and _caller().startswith(self.roots):
                kwargs["device"] = META  # what torch.set_default_device("meta") would do to this call
                made = " without naming its device"
        tensors = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)]
        gen = kwargs.get("generator")
        if isinstance(gen, torch.Generator):
            target = tensors[0].device if tensors else torch.device(kwargs.get("device") or "cpu")
            if target.type != gen.device.type:
                raise DeviceGuardError(
                    f"{_where()}: {name}{made} draws for a tensor on {target} from a generator on {gen.device} (a CPU "
                    f"generator cannot fill a CUDA tensor); draw from robtest.rng.SampleRNG on the data's device, "
                    f"from a generator made there, or on the host with device='cpu' said out loud")
        devices = {t.device.type for t in tensors}
        if "meta" in devices and len(devices) > 1:
            raise DeviceGuardError(
                f"{_where()}: {name} mixes tensors on {sorted(devices)}: a tensor made "
                f"without a device (here on meta, on a GPU run on the CPU) met the data; give it the data's or the "
                f"model's device (device=x.device, torch.zeros_like), or device='cpu' for bookkeeping on the host")
        return func(*args, **kwargs)


@contextlib.contextmanager
def device_guard(*, roots: Sequence[str] = (ROBTEST,)) -> Iterator[None]:
    """Run the block with the guard on: see the module's docstring. ``roots`` are the folders whose code is
    held to naming devices (robtest's own by default; add :data:`SUITES` for the suites' helpers)."""
    with _Guard(roots):
        yield
