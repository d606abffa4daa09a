"""Optimizers: SGD (momentum, dampening, Nesterov, weight decay), Adam and AdamW, as torch.optim.

An optimizer holds *parameter groups*, each a dict with a list of parameters under ``"params"``
and its own hyper-parameters (``lr``, ``momentum``, ...); the constructor's keyword arguments are
the defaults of every group that does not set its own. ``step()`` updates every parameter whose
``.grad`` is not None, ``zero_grad()`` clears the gradients, and ``state_dict()`` /
``load_state_dict()`` save and restore everything a resumed run needs (the hyper-parameters of
each group and the per-parameter buffers), so stopping and resuming changes nothing.

A parameter is anything with a ``.data`` array and a ``.grad`` (None or an array of the same
shape), such as :class:`minivision.nn.Parameter`. The update formulas are those of torch 2.14's
single-tensor paths (``torch/optim/sgd.py``, ``adam.py``, ``adamw.py``) written out line for
line, in the same order of operations, so that the same gradients give the same parameters to
float round-off (torch fuses some multiply-adds, which we cannot, hence "round-off" and not
"bitwise").

Device-pure: hyper-parameters are Python floats and step counters Python ints, so a step reads
no array value back to the host. A step never writes into an existing array: it computes new
arrays and assigns them (``p.data = ...``, ``state["exp_avg"] = ...``), which works on every
backend and keeps arrays the caller still holds (or a saved ``state_dict()``) unchanged; its
in-place ``+=`` only touch temporaries it has just made (see :func:`_plus`).
"""

from __future__ import annotations

import copy
import numbers

from .._backend import array_namespace, device, from_numpy, to_numpy

__all__ = ["Optimizer", "SGD", "Adam", "AdamW"]


def _check_number(name: str, value, *, low=0.0, high=None):
    """A Python real number in ``[low, high)``, else TypeError/ValueError naming it."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a Python number, got {type(value).__name__}")
    if not value >= low or (high is not None and not value < high):
        raise ValueError(f"{name} must be >= {low}{'' if high is None else f' and < {high}'}, got {value}")


def _floats(group: dict, *keys) -> list[float]:
    """Hyper-parameters as Python floats, whoever set them last (a scheduler, a user).

    A NumPy scalar would promote float32 parameters to float64 (NEP 50), and a device array
    would make every step wait for the device, so both are turned away or into floats here.
    """
    values = []
    for key in keys:
        value = group[key]
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"the hyper-parameter {key!r} must be a Python number, got "
                            f"{type(value).__name__}")
        values.append(float(value))
    return values


class Optimizer:
    """Base class: parameter groups, ``zero_grad``, ``state_dict`` and ``load_state_dict``.

    Parameters
    ----------
    params : iterable of parameters, or iterable of dicts
        The parameters to optimize, or parameter groups: dicts with a ``"params"`` list and any
        hyper-parameters that differ from ``defaults`` (``[{"params": backbone, "lr": 1e-4},
        {"params": head}]``).
    defaults : dict
        Hyper-parameters of every group that does not set its own.

    Attributes
    ----------
    param_groups : list of dict
        One dict per group: ``"params"`` and every hyper-parameter (learning-rate schedulers
        change ``group["lr"]``).
    state : dict
        Per-parameter buffers, keyed by ``id(parameter)`` (parameters need not be hashable).
    """

    def __init__(self, params, defaults: dict):
        self.defaults = dict(defaults)
        self.param_groups: list[dict] = []
        self.state: dict[int, dict] = {}
        if hasattr(params, "data") and hasattr(params, "grad"):
            raise TypeError("params must be an iterable of parameters or of dicts, got one "
                            "parameter (wrap it in a list)")
        groups = list(params)
        if not groups:
            raise ValueError("params is empty: the optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def _check_group(self, group: dict) -> None:
        """Check one group's hyper-parameters (subclasses: torch's constructor checks)."""

    def add_param_group(self, param_group: dict) -> None:
        """Add a group of parameters (e.g. layers unfrozen during fine-tuning)."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, got {type(param_group).__name__}")
        params = param_group.get("params")
        if params is None:
            raise ValueError('param_group must have a "params" entry')
        params = [params] if hasattr(params, "data") else list(params)
        for i, p in enumerate(params):
            if not (hasattr(p, "data") and hasattr(p, "grad")):
                raise TypeError(f"params[{i}] must be a parameter (with .data and .grad), "
                                f"got {type(p).__name__}")
        group = {**self.defaults, **param_group, "params": params}
        self._check_group(group)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if len({id(p) for p in params}) != len(params) or seen & {id(p) for p in params}:
            raise ValueError("params: some parameters appear more than once (in one or two groups)")
        self.param_groups.append(group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear every gradient: ``None`` (the default, as torch) or a new array of zeros."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.grad = None if set_to_none else array_namespace(p.grad).zeros_like(p.grad)

    def step(self) -> None:
        raise NotImplementedError

    # --------------------------------------------------------------------------- checkpoints

    def state_dict(self) -> dict:
        """Everything a resumed run needs, in torch's layout.

        Returns
        -------
        dict with
            ``"state"``: ``{index: {"step": int, "exp_avg": array, ...}}`` for each parameter that
            has state, where ``index`` numbers the parameters of all groups in order;
            ``"param_groups"``: one dict per group with its hyper-parameters and
            ``"params"``: the indices of its parameters.

        The arrays are the optimizer's own (never modified later, since a step assigns new
        arrays), so the result is a snapshot; copy it to the host to save it.
        """
        index: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            ids = [index.setdefault(id(p), len(index)) for p in group["params"]]
            saved = {k: copy.deepcopy(v) for k, v in group.items() if k != "params"}
            groups.append({**saved, "params": ids})
        state = {index[k]: dict(v) for k, v in self.state.items() if k in index}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore what :meth:`state_dict` returned, onto this optimizer's parameters.

        Groups are matched by position and parameters by position within them. Floating-point
        buffers are cast to their parameter's dtype and copied onto its backend and device if
        they come from another one (a checkpoint read from disk): the one host -> device copy of
        a resume, never done during a step.
        """
        for key in ("state", "param_groups"):
            if key not in state_dict:
                raise ValueError(f'state_dict must have a "{key}" entry')
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"state_dict has {len(saved_groups)} parameter groups, "
                             f"the optimizer has {len(self.param_groups)}")
        by_index = {}
        for g, (saved, group) in enumerate(zip(saved_groups, self.param_groups)):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(f"state_dict param_groups[{g}] has {len(saved['params'])} "
                                 f"parameters, the optimizer's group {g} has {len(group['params'])}")
            by_index.update(zip(saved["params"], group["params"]))
        new_state = {}
        for i, buffers in state_dict["state"].items():
            p = by_index.get(int(i))
            if p is None:
                raise ValueError(f"state_dict state[{i}] names no parameter of the optimizer")
            new_state[id(p)] = {
                k: int(v) if k == "step" else _like_param(v, p.data, f"state[{i}][{k!r}]")
                for k, v in buffers.items()
            }
        self.param_groups = [
            {**{k: copy.deepcopy(v) for k, v in saved.items() if k != "params"},
             "params": group["params"]}
            for saved, group in zip(saved_groups, self.param_groups)
        ]
        self.state = new_state

    def _groups_with_grads(self) -> list[tuple[dict, list]]:
        """Each group with its parameters that have a gradient, all checked before any update.

        A gradient of another shape would broadcast silently (a ``(1, C)`` bias gradient turns
        a ``(C,)`` bias into a matrix); one of another dtype would change the parameter's.
        Both checks read metadata only.
        """
        out = []
        for g, group in enumerate(self.param_groups):
            params = [p for p in group["params"] if p.grad is not None]
            for i, p in enumerate(group["params"]):
                where = f"param_groups[{g}]['params'][{i}].grad"
                if p.grad is None:
                    continue
                if tuple(p.grad.shape) != tuple(p.data.shape):
                    raise ValueError(f"{where} has shape {tuple(p.grad.shape)}, "
                                     f"the parameter {tuple(p.data.shape)}")
                if p.grad.dtype != p.data.dtype:
                    raise TypeError(f"{where} has dtype {p.grad.dtype}, the parameter {p.data.dtype}")
            out.append((group, params))
        return out


def _like_param(value, data, what: str):
    """A saved buffer on ``data``'s backend, device and dtype, with the parameter's shape."""
    if not hasattr(value, "shape"):
        raise TypeError(f"state_dict {what} must be an array, got {type(value).__name__}")
    if tuple(value.shape) != tuple(data.shape):
        raise ValueError(f"state_dict {what} has shape {tuple(value.shape)}, "
                         f"the parameter {tuple(data.shape)}")
    xp = array_namespace(data)
    try:
        same = array_namespace(value, data) is xp and str(device(value)) == str(device(data))
    except TypeError:
        same = False
    if not same:
        value = from_numpy(to_numpy(value), like=data)
    return xp.astype(value, data.dtype) if value.dtype != data.dtype else value


class SGD(Optimizer):
    """Stochastic gradient descent with momentum, dampening, Nesterov and L2 weight decay.

    For each parameter p with gradient g (``torch.optim.SGD``'s algorithm), at step t::

        g <- -g                       if maximize
        g <- g + weight_decay * p     (L2 penalty weight_decay/2 * |p|^2)
        b <- g                        at t = 1 (no dampening on the first step)
        b <- momentum * b + (1 - dampening) * g   at t > 1
        g <- g + momentum * b         if nesterov, else g <- b
        p <- p - lr * g

    This is Polyak's heavy-ball momentum in torch's form, where the learning rate multiplies the
    whole buffer (Sutskever et al. 2013 put it inside; the two agree while lr is constant);
    with ``momentum=0`` it is plain SGD and keeps no state.

    Parameters
    ----------
    params : iterable of parameters or of parameter-group dicts
    lr : float, default 1e-3
    momentum : float, default 0
    dampening : float, default 0
    weight_decay : float, default 0
    nesterov : bool, default False
        Needs ``momentum > 0`` and ``dampening == 0``.
    maximize : bool, default False
        Ascend the objective instead of descending it.

    Device-pure: no host synchronisation; state ``"momentum_buffer"`` per parameter.
    """

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0,
                 nesterov=False, *, maximize=False):
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening,
                        weight_decay=weight_decay, nesterov=nesterov, maximize=maximize)
        super().__init__(params, defaults)

    def _check_group(self, group):
        _check_number("lr", group["lr"])
        _check_number("momentum", group["momentum"])
        _check_number("dampening", group["dampening"], low=-float("inf"))
        _check_number("weight_decay", group["weight_decay"])
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("nesterov=True needs momentum > 0 and dampening == 0, got "
                             f"momentum={group['momentum']}, dampening={group['dampening']}")

    def step(self) -> None:
        """One update of every parameter whose ``.grad`` is not None."""
        for group, params in self._groups_with_grads():
            lr, momentum, dampening, weight_decay = _floats(
                group, "lr", "momentum", "dampening", "weight_decay")
            nesterov = group["nesterov"]
            for p in params:
                grad = -p.grad if group["maximize"] else p.grad
                if weight_decay != 0:
                    grad = _plus(p.data * weight_decay, grad)  # grad + weight_decay * p
                if momentum != 0:
                    state = self.state.setdefault(id(p), {})
                    buf = state.get("momentum_buffer")
                    if buf is None:
                        # a copy: the caller may later write into its gradient array
                        buf = array_namespace(grad).asarray(grad, copy=True)
                    else:  # momentum * buf + (1 - dampening) * grad
                        buf = _plus(buf * momentum, grad if dampening == 0 else (1 - dampening) * grad)
                    state["momentum_buffer"] = buf
                    grad = _plus(buf * momentum, grad) if nesterov else buf
                p.data = _plus(grad * -lr, p.data)  # p - lr * grad


def _plus(fresh, other):
    """``fresh + other``, written into ``fresh``: an array the caller has just created.

    The in-place ``+=`` (and ``*=``, ``/=`` below) only ever touch arrays a step itself made a
    line earlier, never ``p.data``, ``p.grad`` or a saved buffer, so nobody else sees them; it
    saves a temporary per operation (a quarter of a step's time on NumPy), and gives the same
    floats as the out-of-place expression.
    """
    fresh += other
    return fresh


def _lerp(start, end, weight: float):
    """``torch.lerp(start, end, weight)`` with a Python-float weight, in torch's two forms."""
    diff = end - start
    if abs(weight) < 0.5:
        diff *= weight
        return _plus(diff, start)  # start + weight * (end - start)
    diff *= -(1 - weight)
    return _plus(diff, end)  # end - (end - start) * (1 - weight)


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015) with bias correction, optional AMSGrad and L2 weight decay.

    For each parameter p with gradient g, at step t = 1, 2, ... (``torch.optim.Adam``)::

        g <- -g                                   if maximize
        g <- g + weight_decay * p                 (Adam: L2 penalty in the gradient)
        p <- p * (1 - lr * weight_decay)          (AdamW: decoupled decay, instead)
        m <- beta1 * m + (1 - beta1) * g          first moment  (torch: m.lerp_(g, 1 - beta1))
        v <- beta2 * v + (1 - beta2) * g * g      second moment
        v_max <- max(v_max, v)                    if amsgrad; then v_max replaces v below
        p <- p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

    ``1 - beta^t`` is the bias correction: m and v start at zero, so early on they
    underestimate the moments by exactly that factor (the paper's m_hat, v_hat); eps is added
    after correcting v, as torch does (the paper's ``eps`` in ``sqrt(v_hat) + eps``).

    Parameters
    ----------
    params : iterable of parameters or of parameter-group dicts
    lr : float, default 1e-3
    betas : (float, float), default (0.9, 0.999)
        Each in [0, 1).
    eps : float, default 1e-8
    weight_decay : float, default 0
    amsgrad : bool, default False
        Reddi et al. 2018: normalise by the largest second moment seen so far.
    maximize : bool, default False

    Device-pure. State per parameter: ``"step"`` (int), ``"exp_avg"``, ``"exp_avg_sq"``
    (and ``"max_exp_avg_sq"`` with amsgrad), torch's names.
    """

    _decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 amsgrad=False, *, maximize=False):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                        amsgrad=amsgrad, maximize=maximize)
        super().__init__(params, defaults)

    def _check_group(self, group):
        _check_number("lr", group["lr"])
        _check_number("eps", group["eps"])
        betas = group["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        _check_number("betas[0]", betas[0], high=1.0)
        _check_number("betas[1]", betas[1], high=1.0)
        _check_number("weight_decay", group["weight_decay"])

    def step(self) -> None:
        """One update of every parameter whose ``.grad`` is not None."""
        for group, params in self._groups_with_grads():
            lr, eps, weight_decay = _floats(group, "lr", "eps", "weight_decay")
            beta1, beta2 = _floats(dict(enumerate(group["betas"])), 0, 1)
            amsgrad = group["amsgrad"]
            for p in params:
                xp = array_namespace(p.data)
                state = self.state.setdefault(id(p), {})
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = xp.zeros_like(p.data)
                    state["exp_avg_sq"] = xp.zeros_like(p.data)
                if amsgrad and "max_exp_avg_sq" not in state:
                    state["max_exp_avg_sq"] = xp.zeros_like(p.data)
                state["step"] += 1
                t = state["step"]
                grad = -p.grad if group["maximize"] else p.grad
                param = p.data
                if weight_decay != 0:
                    if self._decoupled:
                        param = param * (1 - lr * weight_decay)
                    else:
                        grad = _plus(param * weight_decay, grad)  # grad + weight_decay * p
                exp_avg = _lerp(state["exp_avg"], grad, 1 - beta1)
                square = grad * (1 - beta2)
                square *= grad
                exp_avg_sq = _plus(state["exp_avg_sq"] * beta2, square)  # b2 v + (1 - b2) g g
                state["exp_avg"], state["exp_avg_sq"] = exp_avg, exp_avg_sq

                bias_correction1 = 1 - beta1**t
                bias_correction2 = 1 - beta2**t
                step_size = lr / bias_correction1
                bias_correction2_sqrt = bias_correction2**0.5
                if amsgrad:
                    exp_avg_sq = xp.maximum(state["max_exp_avg_sq"], exp_avg_sq)
                    state["max_exp_avg_sq"] = exp_avg_sq
                denom = xp.sqrt(exp_avg_sq)
                denom /= bias_correction2_sqrt
                denom += eps
                update = exp_avg * -step_size
                update /= denom
                p.data = _plus(update, param)  # p - step_size * m / denom


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter 2019), as ``torch.optim.AdamW``.

    The same update as :class:`Adam`, except that weight decay shrinks the parameter directly,
    ``p <- p * (1 - lr * weight_decay)``, before the Adam step, instead of entering the
    gradient (where Adam's normalisation would rescale it per coordinate). Default
    ``weight_decay=1e-2``.
    """

    _decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False, *, maximize=False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize)
