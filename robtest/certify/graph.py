"""The model as the bound engine sees it: torch.fx traces it into a DAG of a few op kinds.

Every op is one of

- :class:`Affine`, one input, ``x ↦ L x + b``: ``Linear``, ``Conv2d``, ``ZeroPad2d``, ``AvgPool2d`` and a divisible
  ``AdaptiveAvgPool2d`` (depthwise convolutions with a constant kernel), ``BatchNorm1d/2d`` with its running
  statistics, robtest's :class:`~robtest.models.Normalized` and arithmetic with constants (per-element
  ``x·s + t``), ``Flatten`` / ``view`` / ``reshape``;
- :class:`ReLU`;
- :class:`Sum` of two branches, ``a + b`` or ``a − b`` (residual connections).

``Identity`` and ``Dropout`` vanish. Anything else raises :class:`~robtest.errors.UnsupportedModelError`
naming the layer. The ops read the module's parameters when they run, cast to the dtype of their input: the
same graph bounds the model in float64 (certification) and trains it in float32 with gradients (IBP training).
BatchNorm always uses its running statistics, whatever the model's mode: the graph is the model in eval mode.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable

import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn
from torch.fx.passes.shape_prop import ShapeProp

from robtest.errors import UnsupportedModelError
from robtest.models import Normalized, eval_mode

__all__ = ["Affine", "Graph", "Input", "Op", "ReLU", "SUPPORTED", "Sum", "trace"]

SUPPORTED = ("Linear, Conv2d, ReLU, BatchNorm1d/2d, ZeroPad2d, Flatten (and view/reshape that keep the batch "
             "dimension), AvgPool2d, AdaptiveAvgPool2d (input size a multiple of the output size), Identity, Dropout, "
             "robtest.Normalized, sums of two branches (residual connections), and +, −, ×, ÷ by constants")
WHAT_TO_DO = ("robtest cannot bound this model's outputs: test it with the attack-only verdict (an accuracy "
              "floor under attack), or replace the layer with a supported one")

Getter = Callable[[torch.Tensor], torch.Tensor]  # like-tensor -> constant on its device and dtype


def _cast(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return t.to(device=like.device, dtype=like.dtype)


class Op:
    """A node of the graph: ``inputs`` index earlier ops (0 is the network input), ``shape`` is the shape of
    one sample's output, ``name`` says where it came from (for messages)."""

    def __init__(self, inputs: tuple[int, ...], shape: tuple[int, ...], name: str) -> None:
        self.inputs, self.shape, self.name = inputs, tuple(shape), name

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, inputs={self.inputs}, shape={self.shape})"


class Input(Op):
    """The network input."""


class ReLU(Op):
    """max(x, 0)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x)


class Sum(Op):
    """``signs[0]·a + signs[1]·b`` of two earlier ops of the same shape."""

    def __init__(self, inputs: tuple[int, ...], shape: tuple[int, ...], name: str, signs: tuple[float, ...]):
        super().__init__(inputs, shape, name)
        self.signs = signs

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        a, b = xs
        return a + b if self.signs[1] > 0 else a - b


class Affine(Op):
    """``x ↦ L x + b`` on one input of shape ``in_shape``. Subclasses give the linear part, its transpose,
    the linear part with absolute coefficients |L| (for interval arithmetic) and the offset b."""

    def __init__(self, inputs: tuple[int, ...], shape: tuple[int, ...], name: str, in_shape: tuple[int, ...]):
        super().__init__(inputs, shape, name)
        self.in_shape = tuple(in_shape)

    def linear(self, x: torch.Tensor) -> torch.Tensor:  # (M, *in) -> (M, *out)
        raise NotImplementedError

    def abs_linear(self, r: torch.Tensor) -> torch.Tensor:  # |L| r
        raise NotImplementedError

    def transpose(self, a: torch.Tensor) -> torch.Tensor:  # (M, *out) -> (M, *in): rows of A·L
        raise NotImplementedError

    def offset(self, like: torch.Tensor) -> torch.Tensor | None:
        """b, broadcastable to (1, *shape), or None when there is none."""
        return None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.linear(x)
        b = self.offset(x)
        return out if b is None else out + b

    def back(self, a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Coefficients ``a`` (B, K, *shape) of a linear function of this op's output → coefficients on its
        input (B, K, *in_shape) and the constant they pick up from the offset (B, K)."""
        lead = a.shape[:2]
        flat = a.reshape(-1, *self.shape)
        b = self.offset(a)
        const = (flat * b).flatten(1).sum(1).view(lead) if b is not None else a.new_zeros(lead)
        return self.transpose(flat).view(*lead, *self.in_shape), const


class Linear(Affine):
    def __init__(self, inputs, shape, name, in_shape, module: nn.Linear):
        super().__init__(inputs, shape, name, in_shape)
        self.module = module

    def linear(self, x):
        return F.linear(x, _cast(self.module.weight, x))

    def abs_linear(self, r):
        return F.linear(r, _cast(self.module.weight, r).abs())

    def transpose(self, a):
        return a @ _cast(self.module.weight, a)

    def offset(self, like):
        b = self.module.bias
        return None if b is None else _cast(b, like)


class Conv(Affine):
    """A 2-D convolution with zero padding; average pooling is one with a constant depthwise kernel."""

    def __init__(self, inputs, shape, name, in_shape, *, weight: Getter, bias: Getter | None, kernel: tuple[int, int],
                 stride: tuple[int, int], padding: tuple[int, int], dilation: tuple[int, int], groups: int):
        super().__init__(inputs, shape, name, in_shape)
        self.weight, self.bias = weight, bias
        self.stride, self.padding, self.dilation, self.groups = stride, padding, dilation, groups
        k = kernel
        # conv_transpose2d needs the rows/columns a strided convolution dropped back as output padding
        self.output_padding = tuple(
            in_shape[1 + i] - ((shape[1 + i] - 1) * stride[i] - 2 * padding[i] + dilation[i] * (k[i] - 1) + 1)
            for i in range(2))

    def _conv(self, x, w):
        return F.conv2d(x, w, None, self.stride, self.padding, self.dilation, self.groups)

    def linear(self, x):
        return self._conv(x, self.weight(x))

    def abs_linear(self, r):
        return self._conv(r, self.weight(r).abs())

    def transpose(self, a):
        return F.conv_transpose2d(a, self.weight(a), None, self.stride, self.padding, self.output_padding,
                                  self.groups, self.dilation)

    def offset(self, like):
        return None if self.bias is None else self.bias(like).view(-1, 1, 1)


class Scale(Affine):
    """Per element ``x·s + t`` with constants s, t broadcast to the sample's shape (BatchNorm, normalisation,
    arithmetic with constants)."""

    def __init__(self, inputs, shape, name, *, scale: Getter | None, shift: Getter | None):
        super().__init__(inputs, shape, name, shape)
        self.scale, self.shift = scale, shift

    def linear(self, x):
        return x if self.scale is None else x * self.scale(x)

    def abs_linear(self, r):
        return r if self.scale is None else r * self.scale(r).abs()

    def transpose(self, a):
        return self.linear(a)

    def offset(self, like):
        return None if self.shift is None else self.shift(like)


class Reshape(Affine):
    """A reshape of each sample that keeps the batch dimension (Flatten, view, reshape)."""

    def linear(self, x):
        return x.reshape(x.shape[0], *self.shape)

    def abs_linear(self, r):
        return self.linear(r)

    def transpose(self, a):
        return a.reshape(a.shape[0], *self.in_shape)


class Pad(Affine):
    """Zero padding of the last two dimensions by ``pad`` = (left, right, top, bottom)."""

    def __init__(self, inputs, shape, name, in_shape, pad: tuple[int, int, int, int]):
        super().__init__(inputs, shape, name, in_shape)
        self.pad = pad

    def linear(self, x):
        return F.pad(x, self.pad)

    def abs_linear(self, r):
        return self.linear(r)

    def transpose(self, a):
        left, right, top, bottom = self.pad
        h, w = a.shape[-2:]
        return a[..., top:h - bottom, left:w - right]


class Graph:
    """The traced model: ``ops[0]`` is the input, ``ops[-1]`` the logits; ops are in topological order."""

    def __init__(self, ops: list[Op]) -> None:
        self.ops = ops
        self.in_shape, self.out_shape = ops[0].shape, ops[-1].shape

    def __len__(self) -> int:
        return len(self.ops)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The model's output computed through the graph, in ``x``'s dtype."""
        vals: list[torch.Tensor | None] = [x]
        for op in self.ops[1:]:
            vals.append(op.forward(*(vals[i] for i in op.inputs)))  # type: ignore[union-attr]
        return vals[-1]  # type: ignore[return-value]

    def feeds_relu(self) -> set[int]:
        """Indices of the ops whose output some ReLU takes (the pre-activations)."""
        return {op.inputs[0] for op in self.ops if isinstance(op, ReLU)}

    def __repr__(self) -> str:
        return "Graph(\n" + "\n".join(f"  {i}: {op!r}" for i, op in enumerate(self.ops)) + "\n)"


# --- tracing ---------------------------------------------------------------------------------------------------

class _Root(nn.Module):
    """A wrapper so that a ``Normalized`` at the top is met through ``call_module`` like any other."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.net = model

    def forward(self, x):
        return self.net(x)


class _Tracer(fx.Tracer):
    def call_module(self, m, forward, args, kwargs):
        if isinstance(m, Normalized):
            # Its forward checks the input's shape in Python, which fx cannot trace; it is (x − mean)/std.
            (x,) = args
            return self.call_module(m.model, m.model.forward, ((x - m.mean) / m.std,), {})
        return super().call_module(m, forward, args, kwargs)


def _unsupported(what: str, extra: str = "") -> UnsupportedModelError:
    return UnsupportedModelError(
        f"certify: {what}{extra} is not supported by the bound engine; supported: {SUPPORTED}. {WHAT_TO_DO}."
    )


def _module_path(node: fx.Node) -> str:
    """The user's name of the module whose forward made ``node`` ('' at the top level)."""
    stack = node.meta.get("nn_module_stack") or {}
    return _user_path(next(reversed(stack.values()))[0]) if stack else ""


def _where(node: fx.Node) -> str:
    stack = node.meta.get("nn_module_stack") or {}
    if not stack or not _module_path(node):
        return ""
    cls = next(reversed(stack.values()))[1]
    return f" in '{_module_path(node)}' ({getattr(cls, '__name__', cls)})"


def _user_path(qualname: str) -> str:
    return qualname.removeprefix("net").removeprefix(".")


def _pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)  # type: ignore[return-value]


_RELU = {F.relu, torch.relu, torch.relu_, "relu", "relu_"}
_ALIAS = {"contiguous", "clone", "detach", torch.clone, torch.detach}
_RESHAPE = {torch.flatten, torch.reshape, "flatten", "view", "reshape"}
_ADD = {operator.add, operator.iadd, torch.add, "add", "add_"}
_SUB = {operator.sub, operator.isub, torch.sub, "sub", "sub_"}
_MUL = {operator.mul, operator.imul, torch.mul, "mul", "mul_"}
_DIV = {operator.truediv, operator.itruediv, torch.div, "div", "div_"}
_NEG = {operator.neg, torch.neg, "neg"}


def trace(model: nn.Module, example: torch.Tensor) -> Graph:
    """Trace ``model`` into a :class:`Graph`; ``example`` (a batch in the model's input space, on its device)
    gives the shapes. The model is run once on two samples of it, in eval mode and without gradients.

    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    >>> g = trace(net, torch.rand(1, 1, 2, 2))
    >>> [type(op).__name__ for op in g.ops]
    ['Input', 'Reshape', 'Linear', 'ReLU', 'Linear']
    >>> x = torch.rand(5, 1, 2, 2)
    >>> bool(torch.allclose(g.forward(x), net(x)))
    True
    """
    if not isinstance(model, nn.Module):
        raise _unsupported(f"a model of type {type(model).__name__} (not a torch.nn.Module)")
    root = _Root(model)
    try:
        fx_graph = _Tracer().trace(root)
    except Exception as err:  # data-dependent control flow, unsupported Python constructs...
        raise _unsupported("the model's forward", f" (torch.fx could not trace it: {type(err).__name__}: "
                           f"{str(err).splitlines()[0] if str(err) else ''})") from None
    gm = fx.GraphModule(root, fx_graph)
    two = example[:2] if example.shape[0] >= 2 else example[:1].repeat(2, *([1] * (example.dim() - 1)))
    with eval_mode(model, warn=False), torch.no_grad():
        ShapeProp(gm).propagate(two.detach())
    return _Converter(root).run(fx_graph)


class _Converter:
    """fx nodes → ops. Each node becomes ('op', index), ('const', getter) or ('scalar', None)."""

    def __init__(self, root: nn.Module) -> None:
        self.root = root
        self.ops: list[Op] = []
        self.env: dict[fx.Node, tuple[str, object]] = {}

    def run(self, g: fx.Graph) -> Graph:
        out = None
        for node in g.nodes:
            if node.op == "output":
                out = node.args[0]
                break
            self.env[node] = self._convert(node)
        kind, ref = self.env.get(out, ("other", None)) if isinstance(out, fx.Node) else ("other", None)
        if kind != "op" or ref == 0:
            raise _unsupported(f"a model returning {type(out).__name__ if not isinstance(out, fx.Node) else kind}",
                               " (the bound engine needs a model that returns one logits tensor)")
        return Graph(self._prune(int(ref)))  # type: ignore[arg-type]

    def _prune(self, out: int) -> list[Op]:
        """Keep the ops the output depends on, renumbered, with the output last."""
        need = {out}
        for i in range(out, -1, -1):
            if i in need:
                need.update(self.ops[i].inputs)
        keep = sorted(need | {0})
        new = {old: k for k, old in enumerate(keep)}
        ops = []
        for old in keep:
            op = self.ops[old]
            op.inputs = tuple(new[i] for i in op.inputs)
            ops.append(op)
        return ops

    # -- helpers ---------------------------------------------------------------------------------------------
    def _shape(self, node: fx.Node) -> tuple[int, ...] | None:
        meta = node.meta.get("tensor_meta")
        return tuple(meta.shape) if meta is not None and hasattr(meta, "shape") else None

    def _add(self, op: Op) -> tuple[str, int]:
        self.ops.append(op)
        return "op", len(self.ops) - 1

    def _value(self, a):
        """A constant argument's value now (its getter is called)."""
        return self.env[a][1]() if isinstance(a, fx.Node) else a  # type: ignore[operator]

    def _const(self, node: fx.Node):
        """A getter for a node computed from constants only (buffers, parameters, numbers), else None."""
        def compute():
            args = fx.node.map_aggregate(node.args, self._value)
            kwargs = fx.node.map_aggregate(node.kwargs, self._value)
            if node.op == "call_method":
                return getattr(args[0], node.target)(*args[1:], **kwargs)
            return node.target(*args, **kwargs)

        if all(self.env[n][0] == "const" for n in node.all_input_nodes):
            return compute
        return None

    def _operand(self, a, like_shape: tuple[int, ...], node: fx.Node) -> Getter:
        """A constant operand of arithmetic, as a getter of a tensor that broadcasts to one sample."""
        if isinstance(a, fx.Node):
            kind, ref = self.env[a]
            if kind != "const":  # an op was handled by the caller: this is a Python value computed from x
                raise _unsupported(f"the operation '{node.name}'{_where(node)}",
                                   " with a Python number computed from the input (e.g. from its shape); use a "
                                   "constant")
            fetch = ref
            probe = fetch()  # type: ignore[operator]
            if not isinstance(probe, torch.Tensor):
                return lambda like: torch.as_tensor(fetch(), dtype=like.dtype, device=like.device)  # type: ignore
            if not _broadcasts(tuple(probe.shape), like_shape):
                raise _unsupported(f"the operation '{node.name}'{_where(node)}",
                                   f" (a constant of shape {tuple(probe.shape)} changes the shape {like_shape})")
            return lambda like: _cast(fetch(), like)  # type: ignore[operator]
        if isinstance(a, (int, float)) and not isinstance(a, bool):
            v = float(a)
            return lambda like: torch.tensor(v, dtype=like.dtype, device=like.device)
        raise _unsupported(f"the operation '{node.name}'{_where(node)} (operand {a!r})")

    # -- one node ----------------------------------------------------------------------------------------------
    def _convert(self, node: fx.Node) -> tuple[str, object]:
        if node.op == "placeholder":
            if self.ops:
                raise _unsupported("a model with several inputs")
            shape = self._shape(node)
            return self._add(Input((), shape[1:], "input"))  # type: ignore[index]
        if node.op == "get_attr":
            target = str(node.target)
            return "const", lambda: _fetch(self.root, target)
        getter = self._const(node)
        if getter is not None:
            return "const", getter
        shape = self._shape(node)
        if shape is None:  # sizes, shapes and other Python values: only reshapes may use them
            return "scalar", None
        if shape[0] != 2:
            raise _unsupported(f"the operation '{node.name}'{_where(node)}",
                               f" (it does not keep the batch dimension: shape {shape} for a batch of 2)")
        shape = shape[1:]
        if node.op == "call_module":
            return self._module(node, self.root.get_submodule(str(node.target)), shape)
        return self._function(node, node.target if node.op == "call_function" else str(node.target), shape)

    def _tensor_inputs(self, node: fx.Node) -> list[int]:
        refs = []
        for n in node.all_input_nodes:
            kind, ref = self.env[n]
            if kind == "op":
                refs.append(int(ref))  # type: ignore[arg-type]
        return refs

    def _input(self, node: fx.Node) -> int:
        a = node.args[0] if node.args else None
        kind, ref = self.env[a] if isinstance(a, fx.Node) else ("other", None)
        if kind != "op":
            raise _unsupported(f"the operation '{node.name}'{_where(node)}", " (its input is not a tensor)")
        return int(ref)  # type: ignore[arg-type]

    def _module(self, node: fx.Node, m: nn.Module, shape: tuple[int, ...]) -> tuple[str, object]:
        name = _user_path(str(node.target))
        label = f"layer '{name}' ({type(m).__name__})"
        i = self._input(node)
        in_shape = self.ops[i].shape
        if isinstance(m, (nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.AlphaDropout)):
            return "op", i
        if isinstance(m, nn.ReLU):
            return self._add(ReLU((i,), shape, name))
        if isinstance(m, nn.Linear):
            return self._add(Linear((i,), shape, name, in_shape, m))
        if isinstance(m, nn.Conv2d) and type(m) is nn.Conv2d:
            if m.padding_mode != "zeros" or isinstance(m.padding, str):
                pad = m.padding if isinstance(m.padding, str) else m.padding_mode
                if pad != "valid":
                    raise _unsupported(label, f" with padding {pad!r} (use numeric zero padding)")
            padding = (0, 0) if isinstance(m.padding, str) else _pair(m.padding)
            bias = (lambda like, m=m: _cast(m.bias, like)) if m.bias is not None else None
            return self._add(Conv((i,), shape, name, in_shape, weight=lambda like, m=m: _cast(m.weight, like),
                                  bias=bias, kernel=_pair(m.kernel_size), stride=_pair(m.stride), padding=padding,
                                  dilation=_pair(m.dilation), groups=m.groups))
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) and type(m) in (nn.BatchNorm1d, nn.BatchNorm2d):
            if m.running_mean is None or m.running_var is None:
                raise _unsupported(label, " without running statistics (track_running_stats=False uses each "
                                          "batch's statistics even in eval mode)")
            view = (-1,) + (1,) * (len(shape) - 1)
            return self._add(Scale((i,), shape, name, scale=lambda like, m=m: _bn(m, like)[0].view(view),
                                   shift=lambda like, m=m: _bn(m, like)[1].view(view)))
        if isinstance(m, (nn.ZeroPad2d, nn.ConstantPad2d)) and (isinstance(m, nn.ZeroPad2d) or m.value == 0):
            pad = tuple(m.padding)
            if any(p < 0 for p in pad):
                raise _unsupported(label, " with negative padding (cropping)")
            return self._add(Pad((i,), shape, name, in_shape, pad))  # type: ignore[arg-type]
        if isinstance(m, (nn.Flatten, nn.Unflatten)):
            return self._add(Reshape((i,), shape, name, in_shape))
        if isinstance(m, nn.AvgPool2d) and type(m) is nn.AvgPool2d:
            if m.ceil_mode or (not m.count_include_pad and any(_pair(m.padding))):
                raise _unsupported(label, " with ceil_mode=True or count_include_pad=False")
            k = _pair(m.kernel_size)
            div = m.divisor_override or k[0] * k[1]
            return self._add(_pool((i,), shape, name, in_shape, k, _pair(m.stride or k), _pair(m.padding), div))
        if isinstance(m, nn.AdaptiveAvgPool2d):
            (h, w), (oh, ow) = in_shape[1:], shape[1:]
            if h % oh or w % ow:
                raise _unsupported(label, f" from {h}×{w} to {oh}×{ow} (sizes that do not divide)")
            k = (h // oh, w // ow)
            return self._add(_pool((i,), shape, name, in_shape, k, k, (0, 0), k[0] * k[1]))
        raise _unsupported(label)

    def _function(self, node: fx.Node, fn, shape: tuple[int, ...]) -> tuple[str, object]:
        fname = getattr(fn, "__name__", str(fn))
        label = f"the operation '{fname}'{_where(node)}"
        name = f"{_module_path(node) or 'model'}:{node.name}"
        refs = self._tensor_inputs(node)
        if not refs:
            raise _unsupported(label)
        i = refs[0]
        in_shape = self.ops[i].shape
        if fn in _ALIAS:
            return "op", self._input(node)
        if fn in _RELU:
            return self._add(ReLU((self._input(node),), shape, name))
        if fn in _RESHAPE:
            return self._add(Reshape((self._input(node),), shape, name, in_shape))
        if fn in _NEG:
            return self._add(Scale((self._input(node),), shape, name, scale=_minus_one, shift=None))
        if fn in _ADD | _SUB | _MUL | _DIV:
            if node.kwargs:
                raise _unsupported(label, f" with keyword arguments {sorted(node.kwargs)}")
            a, b = node.args[:2]
            a_op = isinstance(a, fx.Node) and self.env[a][0] == "op"
            b_op = isinstance(b, fx.Node) and self.env[b][0] == "op"
            sign = -1.0 if fn in _SUB else 1.0
            if a_op and b_op and fn in _ADD | _SUB:
                sa, sb = self.ops[self.env[a][1]].shape, self.ops[self.env[b][1]].shape  # type: ignore[index]
                if sa != sb:
                    raise _unsupported(label, f" of shapes {sa} and {sb} (broadcasting between branches)")
                return self._add(Sum((int(self.env[a][1]), int(self.env[b][1])), shape, name,  # type: ignore
                                     (1.0, sign)))
            if a_op and b_op:
                raise _unsupported(label, " of two input-dependent tensors")
            x_first = a_op
            x = int(self.env[a if a_op else b][1])  # type: ignore[arg-type]
            if self.ops[x].shape != shape:
                raise _unsupported(label, f" (it broadcasts {self.ops[x].shape} to {shape})")
            c = self._operand(b if a_op else a, shape, node)
            if fn in _ADD:
                return self._add(Scale((x,), shape, name, scale=None, shift=c))
            if fn in _SUB:
                if x_first:
                    return self._add(Scale((x,), shape, name, scale=None, shift=lambda like: -c(like)))
                return self._add(Scale((x,), shape, name, scale=_minus_one, shift=c))
            if fn in _MUL:
                return self._add(Scale((x,), shape, name, scale=c, shift=None))
            if not x_first:
                raise _unsupported(label, " (dividing by an input-dependent tensor)")
            return self._add(Scale((x,), shape, name, scale=lambda like: 1.0 / c(like), shift=None))
        raise _unsupported(label)


def _broadcasts(const: tuple[int, ...], sample: tuple[int, ...]) -> bool:
    """Whether a constant of shape ``const`` broadcasts against one sample (with or without a batch dim of 1)
    without changing its shape."""
    for target in ((1, *sample), sample):
        try:
            if torch.broadcast_shapes(const, target) == target:
                return True
        except RuntimeError:
            pass
    return False


def _minus_one(like: torch.Tensor) -> torch.Tensor:
    return torch.full((), -1.0, dtype=like.dtype, device=like.device)


def _fetch(root: nn.Module, target: str):
    obj = root
    for part in target.split("."):
        obj = getattr(obj, part)
    return obj


def _bn(m: nn.BatchNorm1d | nn.BatchNorm2d, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    inv = torch.rsqrt(_cast(m.running_var, like) + m.eps)  # type: ignore[arg-type]
    scale = inv if m.weight is None else _cast(m.weight, like) * inv
    shift = -_cast(m.running_mean, like) * scale  # type: ignore[arg-type]
    if m.bias is not None:
        shift = shift + _cast(m.bias, like)
    return scale, shift


def _pool(inputs, shape, name, in_shape, k, stride, padding, divisor) -> Conv:
    channels = in_shape[0]

    def weight(like: torch.Tensor) -> torch.Tensor:
        return torch.full((channels, 1, *k), 1.0 / divisor, dtype=like.dtype, device=like.device)

    return Conv(inputs, shape, name, in_shape, weight=weight, bias=None, kernel=k, stride=stride, padding=padding,
                dilation=(1, 1), groups=channels)
