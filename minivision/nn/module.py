"""``Parameter`` and ``Module``: layers that hold weights and run backwards by hand.

torch builds a graph while the forward pass runs and walks it backwards in ``loss.backward()``.
minivision has no graph: each layer is a :class:`Module` whose ``__call__`` runs the forward pass
and *caches* what its backward pass needs, and whose ``backward(grad_output)`` returns the
gradient of its input and **adds** the gradients of its weights to ``Parameter.grad``. A network
calls its layers' ``backward`` in the reverse order of their forward calls (that is all
:class:`~minivision.nn.Sequential` does); a weight used twice receives the sum of both
gradients, which is why gradients accumulate and why an optimiser step starts with
``zero_grad()``. A module caches its *last* forward pass only: a layer applied twice runs its
backward pass once per use, each right after re-running (or keeping) that use's forward.

The bookkeeping mirrors ``torch.nn.Module`` so that names carry over: assigning a
:class:`Parameter` or a ``Module`` to an attribute registers it, ``named_parameters()`` yields
torch's dotted names (``"features.0.weight"``), ``register_buffer`` holds non-learned state
(BatchNorm's running statistics) and ``state_dict()`` / ``load_state_dict()`` use the same keys
as torch, so ``ours.load_state_dict(torch_module.state_dict())`` loads torch's weights as they are.

Backends: parameters are arrays of any Array API library (NumPy by default, float32 as torch);
:meth:`Module.to` moves a module to another namespace, device or dtype. Device-pure: nothing here
copies to the host except :meth:`Module.load_state_dict` reading a tensor from another library.
"""

from __future__ import annotations

from collections import OrderedDict

from array_api_compat import to_device

from .._backend import array_namespace, device, from_numpy, is_array_api_obj, to_numpy

__all__ = ["Parameter", "Module"]


def _dtype_name(dtype) -> str:
    """``float32`` for NumPy's, torch's, CuPy's or array-api-strict's float32 (or its name)."""
    if isinstance(dtype, str):
        return dtype
    if isinstance(dtype, type):  # numpy.float32, the scalar type
        return dtype.__name__
    return str(dtype).rsplit(".", 1)[-1]


def _convert(value, xp, dev, dtype):
    """``value`` (an array of any library, or a nested list) as an ``xp`` array on ``dev``.

    Arrays of ``xp`` itself are copied on their device; anything else goes through the host
    (a torch tensor into a NumPy module, a NumPy array into a CuPy one).
    """
    if is_array_api_obj(value) and array_namespace(value) is xp:
        out = xp.asarray(value, copy=True)
        if dev is not None and device(out) != dev:
            out = to_device(out, dev)
    else:
        like = xp.zeros(0) if dev is None else xp.zeros(0, device=dev)
        host = to_numpy(value) if is_array_api_obj(value) else value
        out = from_numpy(host, like)
        shape = tuple(getattr(host, "shape", out.shape))
        if tuple(out.shape) != shape:  # from_numpy's ascontiguousarray makes a 0-d array 1-d
            out = xp.reshape(out, shape)
        out = xp.asarray(out, copy=True)  # NumPy may share the source's memory (torch's .numpy())
    if dtype is not None and out.dtype != dtype:
        out = xp.astype(out, dtype)
    return out


class Parameter:
    """A learned array: ``.data`` holds the value, ``.grad`` the accumulated gradient (or None).

    Parameters
    ----------
    data : array
        The value; any Array API array. The Parameter keeps a reference, not a copy.
    requires_grad : bool
        If False, layers leave ``.grad`` untouched (a frozen weight), as torch's flag.

    Notes
    -----
    Optimisers keep references to Parameter objects, never to ``.data``: updating in place
    (``p.data -= lr * p.grad`` on NumPy) or rebinding (``p.data = p.data - lr * p.grad``, the
    only way on immutable backends) are both fine.
    """

    def __init__(self, data, requires_grad: bool = True):
        if isinstance(data, Parameter):
            data = data.data
        if not is_array_api_obj(data):
            raise TypeError(f"data must be an array, got {type(data).__name__}")
        self.data = data
        self.grad = None
        self.requires_grad = bool(requires_grad)

    @property
    def shape(self):
        return tuple(self.data.shape)

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    def accumulate_grad(self, grad) -> None:
        """``self.grad += grad`` (``grad`` when ``.grad`` is None); nothing if frozen."""
        if not self.requires_grad:
            return
        if tuple(grad.shape) != self.shape:
            raise ValueError(
                f"gradient of shape {tuple(grad.shape)} for a parameter of shape {self.shape}"
            )
        self.grad = grad if self.grad is None else self.grad + grad

    def __repr__(self):
        return f"Parameter(shape={self.shape}, dtype={_dtype_name(self.dtype)})"


class Module:
    """Base class of every layer: registered parameters, buffers and sub-modules, forward/backward.

    Subclasses implement ``forward(x)`` (cache what backward needs on ``self``) and
    ``backward(grad_output)`` (return the input gradient, accumulate parameter gradients with
    :meth:`Parameter.accumulate_grad`). ``module(x)`` calls ``forward``.
    """

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    # ------------------------------------------------------------------ registration

    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise AttributeError(
                f"{type(self).__name__}.__init__ must call super().__init__() first"
            )
        for table in (self._parameters, self._buffers, self._modules):
            if name in table and not (
                (table is self._parameters and isinstance(value, Parameter))
                or (table is self._modules and isinstance(value, Module))
                or table is self._buffers
            ):
                del table[name]
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        elif name in self._buffers:
            self._buffers[name] = value
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name):
        # only reached when normal lookup fails: registered entries live in the tables
        for table in ("_parameters", "_buffers", "_modules"):
            entries = self.__dict__.get(table)
            if entries is not None and name in entries:
                return entries[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __delattr__(self, name):
        for table in (self._parameters, self._buffers, self._modules):
            if name in table:
                del table[name]
                return
        object.__delattr__(self, name)

    def register_parameter(self, name: str, param) -> None:
        """Register ``param`` (a :class:`Parameter` or None, as torch's absent bias) as ``name``."""
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"{name} must be a Parameter or None, got {type(param).__name__}")
        self.__dict__.pop(name, None)
        self._parameters[name] = param

    def register_buffer(self, name: str, value, persistent: bool = True) -> None:
        """Register non-learned state (an array or None) saved in ``state_dict`` if persistent."""
        self.__dict__.pop(name, None)
        self._buffers[name] = value
        if not persistent:
            self._non_persistent.add(name)

    def add_module(self, name: str, module) -> None:
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{name} must be a Module or None, got {type(module).__name__}")
        self.__dict__.pop(name, None)
        self._modules[name] = module

    # ------------------------------------------------------------------ traversal

    def named_modules(self, prefix: str = ""):
        """Yield ``(dotted name, module)`` for this module and every descendant, depth first."""
        yield prefix, self
        for name, child in self._modules.items():
            if child is not None:
                yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self):
        for _, module in self.named_modules():
            yield module

    def named_children(self):
        for name, child in self._modules.items():
            if child is not None:
                yield name, child

    def children(self):
        for _, child in self.named_children():
            yield child

    def named_parameters(self, prefix: str = "", recurse: bool = True):
        """Yield ``(name, Parameter)`` with torch's dotted names; a shared Parameter once."""
        seen = set()
        modules = self.named_modules(prefix) if recurse else [(prefix, self)]
        for mod_prefix, module in modules:
            for name, param in module._parameters.items():
                if param is None or id(param) in seen:
                    continue
                seen.add(id(param))
                yield (f"{mod_prefix}.{name}" if mod_prefix else name), param

    def parameters(self, recurse: bool = True):
        for _, param in self.named_parameters(recurse=recurse):
            yield param

    def named_buffers(self, prefix: str = "", recurse: bool = True):
        modules = self.named_modules(prefix) if recurse else [(prefix, self)]
        for mod_prefix, module in modules:
            for name, buf in module._buffers.items():
                if buf is not None:
                    yield (f"{mod_prefix}.{name}" if mod_prefix else name), buf

    def buffers(self, recurse: bool = True):
        for _, buf in self.named_buffers(recurse=recurse):
            yield buf

    # ------------------------------------------------------------------ modes and gradients

    def train(self, mode: bool = True):
        """Set training mode (BatchNorm uses batch statistics, Dropout drops) here and below."""
        for module in self.modules():
            object.__setattr__(module, "training", bool(mode))
        return self

    def eval(self):
        """``train(False)``: BatchNorm uses its running statistics, Dropout is the identity."""
        return self.train(False)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget accumulated gradients: ``.grad = None`` (torch's default) or zeros."""
        for param in self.parameters():
            if set_to_none or param.grad is None:
                param.grad = None
            else:
                param.grad = param.grad * 0

    def requires_grad_(self, requires_grad: bool = True):
        for param in self.parameters():
            param.requires_grad = bool(requires_grad)
        return self

    # ------------------------------------------------------------------ forward / backward

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} does not implement forward")

    def backward(self, grad_output):
        raise NotImplementedError(f"{type(self).__name__} does not implement backward")

    def _cached(self, *names):
        """The values a backward pass needs, or a clear error if forward has not run."""
        cache = self.__dict__.get("_cache")
        if cache is None:
            raise RuntimeError(
                f"{type(self).__name__}.backward called before forward: call the module on an "
                "input first (its forward pass caches what the backward pass needs)"
            )
        return cache if not names else tuple(cache[n] for n in names)

    # ------------------------------------------------------------------ state

    def state_dict(self) -> OrderedDict:
        """Parameters and persistent buffers by torch's dotted names (the arrays, not copies)."""
        out = OrderedDict()
        for mod_prefix, module in self.named_modules():
            for name, param in module._parameters.items():
                if param is not None:
                    out[f"{mod_prefix}.{name}" if mod_prefix else name] = param.data
            for name, buf in module._buffers.items():
                if buf is not None and name not in module._non_persistent:
                    out[f"{mod_prefix}.{name}" if mod_prefix else name] = buf
        return out

    def load_state_dict(self, state_dict, strict: bool = True):
        """Copy values from ``state_dict`` (ours or torch's) into the parameters and buffers.

        Values may be arrays of any library (torch tensors, NumPy arrays, ...); each is copied
        onto this module's backend, device and dtype. With ``strict``, a missing or unexpected
        key raises ``KeyError`` naming it; a value of the wrong shape always raises
        ``ValueError`` naming the key and both shapes.

        Returns
        -------
        (missing_keys, unexpected_keys) : tuple of two lists (empty when ``strict``).
        """
        own = {}
        for mod_prefix, module in self.named_modules():
            for kind in ("_parameters", "_buffers"):
                for name, value in getattr(module, kind).items():
                    if value is None or (kind == "_buffers" and name in module._non_persistent):
                        continue
                    own[f"{mod_prefix}.{name}" if mod_prefix else name] = (module, kind, name)
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        if strict and (missing or unexpected):
            parts = []
            if missing:
                parts.append(f"missing keys {missing}")
            if unexpected:
                parts.append(f"unexpected keys {unexpected}")
            raise KeyError(f"load_state_dict into {type(self).__name__}: " + "; ".join(parts))
        updates = []
        for key, (module, kind, name) in own.items():
            if key not in state_dict:
                continue
            value = state_dict[key]
            target = getattr(module, kind)[name]
            target_array = target.data if kind == "_parameters" else target
            shape = tuple(getattr(value, "shape", ()))
            if shape != tuple(target_array.shape):
                raise ValueError(
                    f"load_state_dict: {key} has shape {shape}, the module expects "
                    f"{tuple(target_array.shape)}"
                )
            xp = array_namespace(target_array)
            updates.append(
                (module, kind, name, _convert(value, xp, device(target_array), target_array.dtype))
            )
        for module, kind, name, array in updates:  # all checked before anything changes
            if kind == "_parameters":
                module._parameters[name].data = array
            else:
                module._buffers[name] = array
        return missing, unexpected

    def to(self, xp=None, device=None, dtype=None):
        """Move every parameter, gradient and buffer to namespace ``xp`` / ``device`` / ``dtype``.

        ``xp`` is an Array API namespace (``array_api_compat.cupy``, ``array_api_strict``, ...;
        None keeps each array's own), ``dtype`` a floating dtype of that namespace or its name
        (``"float64"``); integer buffers such as ``num_batches_tracked`` keep their dtype.
        Returns ``self``, as torch.
        """

        def move(array):
            target_xp = array_namespace(array) if xp is None else xp
            float_dtype = None
            if target_xp.isdtype(_as_dtype(target_xp, array.dtype), "real floating"):
                float_dtype = dtype if dtype is not None else array.dtype
            keep = _as_dtype(target_xp, float_dtype if float_dtype is not None else array.dtype)
            return _convert(array, target_xp, device, keep)

        for module in self.modules():
            for param in module._parameters.values():
                if param is not None:
                    param.data = move(param.data)
                    if param.grad is not None:
                        param.grad = move(param.grad)
            for name, buf in module._buffers.items():
                if buf is not None:
                    module._buffers[name] = move(buf)
            module.__dict__.pop("_cache", None)
        return self

    # ------------------------------------------------------------------ printing

    def extra_repr(self) -> str:
        return ""

    def __repr__(self):
        lines = [
            f"  ({name}): " + repr(child).replace("\n", "\n  ")
            for name, child in self.named_children()
        ]
        head = f"{type(self).__name__}({self.extra_repr()}"
        return head + ("\n" + "\n".join(lines) + "\n)" if lines else ")")


def _as_dtype(xp, dtype):
    """``dtype`` (a dtype of any library or a name) as a dtype of namespace ``xp``."""
    if dtype is None:
        return None
    return getattr(xp, dtype if isinstance(dtype, str) else _dtype_name(dtype))
