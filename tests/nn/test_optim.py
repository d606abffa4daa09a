"""Optimizers against torch.optim: the same parameters and gradient sequence, the same updates.

Every case runs 20 steps through ``torch.optim`` (single-tensor path, ``foreach=False``, and the
default) and through ours in float64, with two parameter groups, a parameter that misses its
gradient on some steps and one that never gets one, and compares after every step (max |diff|
<= 1e-12: torch fuses some multiply-adds, so the last bit may differ). Then state_dict round
trips (ours, and torch's own state_dict loaded into ours), schedulers driving the optimizer,
every backend (float32, device-pure under ``no_sync``), and bad input.
"""

from __future__ import annotations

import copy
import itertools

import numpy as np
import pytest
import torch

from minivision._backend import to_numpy
from minivision.nn import lr_scheduler
from minivision.nn.optim import SGD, Adam, AdamW

STEPS = 20
SHAPES = [(4, 3), (5,), (2, 3, 2), (3,)]  # the last parameter never gets a gradient
TOL = 1e-12


class Param:
    """The duck-typed parameter the optimizers need: ``.data`` and ``.grad``."""

    def __init__(self, data):
        self.data, self.grad = data, None


def _problem(seed=0):
    rng = np.random.default_rng(seed)
    init = [rng.standard_normal(s) for s in SHAPES]
    grads = [[rng.standard_normal(s) * (1 + t % 3) for s in SHAPES] for t in range(STEPS)]
    for t, step_grads in enumerate(grads):
        step_grads[-1] = None
        if t % 3 == 1:
            step_grads[1] = None  # skipped this step, state untouched
    return init, grads


def _groups(params, second_group):
    """Two groups: the first parameter alone with the defaults, the rest with overrides."""
    return [{"params": params[:1]}, {"params": params[1:], **second_group}]


def _run_torch(cls, kwargs, second_group, init, grads, foreach=False, schedule=None):
    ts = [torch.tensor(a, requires_grad=True) for a in init]
    opt = cls(_groups(ts, second_group), foreach=foreach, **kwargs)
    sched = schedule(torch.optim.lr_scheduler, opt) if schedule else None
    history = []
    for step_grads in grads:
        for t, g in zip(ts, step_grads):
            t.grad = None if g is None else torch.tensor(g)
        opt.step()
        if sched:
            sched.step()
        history.append([t.detach().numpy().copy() for t in ts])
    return history, opt


def _run_ours(cls, kwargs, second_group, init, grads, schedule=None, opt=None, params=None):
    ps = params or [Param(a.copy()) for a in init]
    opt = opt or cls(_groups(ps, second_group), **kwargs)
    sched = schedule(lr_scheduler, opt) if schedule else None
    history = []
    for step_grads in grads:
        for p, g in zip(ps, step_grads):
            p.grad = None if g is None else g.copy()
        opt.step()
        if sched:
            sched.step()
        history.append([p.data for p in ps])
    return history, opt, ps


def _assert_histories(ours, ref, what, tol=TOL):
    for t, (mine, theirs) in enumerate(zip(ours, ref, strict=True)):
        for i, (a, b) in enumerate(zip(mine, theirs)):
            diff = np.max(np.abs(to_numpy(a) - b))
            assert diff <= tol, f"{what}: parameter {i} after step {t + 1} differs by {diff:.3g}"


def _sgd_cases():
    for momentum, dampening, nesterov, weight_decay, maximize in itertools.product(
        (0.0, 0.9), (0.0, 0.25), (False, True), (0.0, 0.01), (False, True)
    ):
        if nesterov and (momentum == 0 or dampening != 0):
            continue
        kwargs = dict(lr=0.05, momentum=momentum, dampening=dampening, nesterov=nesterov,
                      weight_decay=weight_decay, maximize=maximize)
        name = (f"m{momentum}-d{dampening}-{'nesterov' if nesterov else 'plain'}"
                f"-wd{weight_decay}{'-max' if maximize else ''}")
        yield pytest.param(SGD, torch.optim.SGD, kwargs, {"lr": 0.2}, id=f"SGD-{name}")


def _adam_cases():
    for (ours, ref), amsgrad, weight_decay, maximize, betas in itertools.product(
        ((Adam, torch.optim.Adam), (AdamW, torch.optim.AdamW)),
        (False, True), (0.0, 0.1), (False, True), ((0.9, 0.999), (0.5, 0.7)),
    ):
        kwargs = dict(lr=0.01, betas=betas, eps=1e-8, weight_decay=weight_decay,
                      amsgrad=amsgrad, maximize=maximize)
        name = (f"{ours.__name__}-b{betas[0]},{betas[1]}-wd{weight_decay}"
                f"{'-amsgrad' if amsgrad else ''}{'-max' if maximize else ''}")
        yield pytest.param(ours, ref, kwargs, {"lr": 0.03, "eps": 1e-6}, id=name)


CASES = [*_sgd_cases(), *_adam_cases()]


@pytest.mark.parametrize("ours, ref, kwargs, second_group", CASES)
def test_twenty_steps_equal_torch(ours, ref, kwargs, second_group):
    init, grads = _problem()
    mine, opt, ps = _run_ours(ours, kwargs, second_group, init, grads)
    for foreach in (False, None):
        theirs, ref_opt = _run_torch(ref, kwargs, second_group, init, grads, foreach=foreach)
        _assert_histories(mine, theirs, f"{ours.__name__} vs torch (foreach={foreach})")
    assert np.array_equal(ps[-1].data, init[-1]), "a parameter without gradient moved"
    assert id(ps[-1]) not in opt.state, "a parameter without gradient got optimizer state"
    # the state has torch's buffer names, with the same values
    ref_state = ref_opt.state_dict()["state"]
    for i, buffers in opt.state_dict()["state"].items():
        assert set(buffers) == set(ref_state[i]), f"state of parameter {i}"
        for k, v in buffers.items():
            assert np.max(np.abs(np.asarray(v) - ref_state[i][k].numpy())) <= TOL, (i, k)


@pytest.mark.parametrize("ours, ref, kwargs, second_group", CASES[::5])
def test_state_dict_round_trip_resumes_exactly(ours, ref, kwargs, second_group):
    """Stop after 9 steps, save (copied, as to disk), rebuild, load, go on: bit-identical."""
    init, grads = _problem(1)
    full, _, _ = _run_ours(ours, kwargs, second_group, init, grads)

    first, opt, ps = _run_ours(ours, kwargs, second_group, init, grads[:9])
    saved = copy.deepcopy(opt.state_dict())
    fresh = [Param(np.array(p.data)) for p in ps]
    resumed_opt = ours(_groups(fresh, {}), **kwargs)  # group overrides come from the state_dict
    resumed_opt.load_state_dict(saved)
    rest, _, _ = _run_ours(ours, kwargs, second_group, init, grads[9:], opt=resumed_opt, params=fresh)
    for t, (a, b) in enumerate(zip(first + rest, full)):
        assert all(np.array_equal(x, y) for x, y in zip(a, b)), f"differs after step {t + 1}"


@pytest.mark.parametrize("ours, ref, kwargs, second_group", CASES[1::7])
def test_torch_state_dict_loads_and_continues_like_torch(ours, ref, kwargs, second_group):
    """A torch optimizer's state_dict (tensors) loads into ours; both continue alike."""
    init, grads = _problem(2)
    theirs, ref_opt = _run_torch(ref, kwargs, second_group, init, grads)
    head, ref_head = _run_torch(ref, kwargs, second_group, init, grads[:11])
    ps = [Param(a.copy()) for a in head[-1]]
    opt = ours(_groups(ps, {}), **kwargs)
    opt.load_state_dict(ref_head.state_dict())
    for group, ref_group in zip(opt.param_groups, ref_head.param_groups):
        assert group["lr"] == ref_group["lr"]
    rest, _, _ = _run_ours(ours, kwargs, second_group, init, grads[11:], opt=opt, params=ps)
    _assert_histories(rest, theirs[11:], "after loading torch's state_dict")


def _warmup_cosine(lib, opt):
    return lib.SequentialLR(
        opt, [lib.LinearLR(opt, start_factor=0.1, total_iters=5), lib.CosineAnnealingLR(opt, 15)],
        milestones=[5],
    )


@pytest.mark.parametrize("ours, ref, kwargs, second_group", [CASES[5], CASES[-3]])
def test_scheduled_learning_rate_equals_torch(ours, ref, kwargs, second_group):
    init, grads = _problem(3)
    mine, _, _ = _run_ours(ours, kwargs, second_group, init, grads, schedule=_warmup_cosine)
    theirs, _ = _run_torch(ref, kwargs, second_group, init, grads, schedule=_warmup_cosine)
    _assert_histories(mine, theirs, "with warm-up + cosine schedule")


BACKEND_CASES = {
    "SGD-nesterov-wd": (SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)),
    "SGD-dampening-max": (SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.8, dampening=0.3, maximize=True)),
    "Adam-amsgrad-wd": (Adam, torch.optim.Adam, dict(lr=0.01, weight_decay=0.1, amsgrad=True)),
    "AdamW": (AdamW, torch.optim.AdamW, dict(lr=0.01, betas=(0.8, 0.9))),
}


@pytest.mark.parametrize("case", list(BACKEND_CASES))
def test_every_backend_device_pure(be, no_sync, case):
    """On each backend: results stay there in its dtype, no host sync, torch's values."""
    ours, ref, kwargs = BACKEND_CASES[case]
    init, grads = _problem(4)
    dtype = be.np_float
    init = [a.astype(dtype) for a in init]
    grads = [[None if g is None else g.astype(dtype) for g in gs] for gs in grads]
    ps = [Param(be.asarray(a)) for a in init]
    opt = ours(_groups(ps, {"lr": 0.02}), **kwargs)
    ts = [torch.tensor(a, requires_grad=True) for a in init]
    ref_opt = ref(_groups(ts, {"lr": 0.02}), foreach=False, **kwargs)
    for step_grads in grads:
        for p, t, g in zip(ps, ts, step_grads):
            p.grad = None if g is None else be.asarray(g)
            t.grad = None if g is None else torch.tensor(g)
        opt.step()
        ref_opt.step()
    tol = TOL if dtype == np.float64 else 2e-6
    for i, (p, t) in enumerate(zip(ps, ts)):
        assert be.dtype_name(p.data) == np.dtype(dtype).name, f"parameter {i} changed dtype"
        got, expected = to_numpy(p.data), t.detach().numpy()
        assert np.max(np.abs(got - expected)) <= tol, f"{case} on {be.name}: parameter {i}"


@pytest.mark.parametrize("cls", [SGD, Adam, AdamW])
def test_step_assigns_new_arrays_and_leaves_inputs_alone(cls):
    init, grads = _problem(5)
    ps = [Param(a.copy()) for a in init[:3]]
    kwargs = dict(lr=0.1, momentum=0.9, weight_decay=0.1) if cls is SGD else dict(lr=0.1)
    opt = cls(ps, **kwargs)
    for step_grads in grads[:3]:
        old = [(p.data, p.data.copy()) for p in ps]
        for p, g in zip(ps, step_grads):
            p.grad = None if g is None else g.copy()
        given = [(p.grad, None if p.grad is None else p.grad.copy()) for p in ps]
        opt.step()
        for (arr, before), (g, g_before) in zip(old, given):
            assert np.array_equal(arr, before), "step wrote into the old parameter array"
            assert g is None or np.array_equal(g, g_before), "step wrote into a gradient"
        # a caller that accumulates in place into its gradient must not reach the optimizer
        for p in ps:
            if p.grad is not None:
                p.grad += 100.0
        state = copy.deepcopy(opt.state_dict()["state"])
        for i, buffers in opt.state_dict()["state"].items():
            for k, v in buffers.items():
                assert np.array_equal(v, state[i][k])


def test_zero_grad_sets_none_or_new_zeros():
    ps = [Param(np.ones((2, 3))), Param(np.ones(4, dtype=np.float32)), Param(np.ones(1))]
    opt = SGD(ps, lr=0.1)
    for p in ps[:2]:
        p.grad = np.full(p.data.shape, 3.0, dtype=p.data.dtype)
    old = ps[0].grad
    opt.zero_grad(set_to_none=False)
    assert ps[0].grad is not old and np.all(old == 3.0), "zero_grad must not write in place"
    assert np.array_equal(ps[0].grad, np.zeros((2, 3))) and ps[1].grad.dtype == np.float32
    assert ps[2].grad is None
    opt.zero_grad()
    assert all(p.grad is None for p in ps)


def test_param_groups_and_add_param_group():
    a, b, c = Param(np.ones(2)), Param(np.ones(2)), Param(np.ones(2))
    opt = SGD([{"params": [a], "lr": 0.5}, {"params": [b]}], lr=0.1, momentum=0.5)
    opt.add_param_group({"params": c, "lr": 1.0, "momentum": 0.0})
    assert [g["lr"] for g in opt.param_groups] == [0.5, 0.1, 1.0]
    assert [g["momentum"] for g in opt.param_groups] == [0.5, 0.5, 0.0]
    for p in (a, b, c):
        p.grad = np.ones(2)
    opt.step()
    assert np.array_equal(a.data, [0.5, 0.5]) and np.array_equal(b.data, [0.9, 0.9])
    assert np.array_equal(c.data, [0.0, 0.0]) and id(c) not in opt.state
    assert opt.state_dict()["param_groups"][2]["params"] == [2]


def test_bad_arguments_name_the_argument():
    p = Param(np.zeros(2))
    with pytest.raises(ValueError, match="lr"):
        SGD([p], lr=-0.1)
    with pytest.raises(ValueError, match="momentum"):
        SGD([p], lr=0.1, momentum=-0.5)
    with pytest.raises(ValueError, match="weight_decay"):
        SGD([p], lr=0.1, weight_decay=-1e-4)
    with pytest.raises(ValueError, match="nesterov"):
        SGD([p], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="nesterov"):
        SGD([p], lr=0.1, momentum=0.9, dampening=0.1, nesterov=True)
    with pytest.raises(ValueError, match="lr"):
        SGD([{"params": [p], "lr": -1.0}], lr=0.1)
    with pytest.raises(TypeError, match="lr"):
        SGD([p], lr=np.ones(1))
    for betas, name in [((1.0, 0.999), r"betas\[0\]"), ((0.9, -0.1), r"betas\[1\]"),
                        ((0.9,), "betas")]:
        with pytest.raises(ValueError, match=name):
            Adam([p], betas=betas)
    with pytest.raises(ValueError, match="eps"):
        AdamW([p], eps=-1e-8)
    with pytest.raises(ValueError, match="lr"):
        Adam([p], lr=-1e-3)
    with pytest.raises(ValueError, match="weight_decay"):
        AdamW([p], weight_decay=-0.01)
    with pytest.raises(ValueError, match="empty"):
        Adam([])
    with pytest.raises(TypeError, match="params"):
        Adam(p)
    with pytest.raises(TypeError, match=r"params\[1\]"):
        Adam([p, np.zeros(2)])
    with pytest.raises(ValueError, match="more than once"):
        Adam([p, p])
    with pytest.raises(ValueError, match="more than once"):
        Adam([{"params": [p]}, {"params": [p]}])


def test_load_state_dict_mismatch_names_the_entry():
    ps = [Param(np.zeros(2)), Param(np.zeros(3))]
    opt = Adam(ps)
    for p in ps:
        p.grad = np.ones(p.data.shape)
    opt.step()
    saved = opt.state_dict()
    with pytest.raises(ValueError, match="parameter groups"):
        Adam([{"params": ps[:1]}, {"params": ps[1:]}]).load_state_dict(saved)
    with pytest.raises(ValueError, match=r"param_groups\[0\] has 2 parameters"):
        Adam(ps[:1]).load_state_dict(saved)
    bad = copy.deepcopy(saved)
    bad["state"][1]["exp_avg"] = np.zeros(4)
    with pytest.raises(ValueError, match=r"state\[1\]\['exp_avg'\] has shape \(4,\)"):
        Adam(ps).load_state_dict(bad)
    with pytest.raises(ValueError, match="state"):
        Adam(ps).load_state_dict({"param_groups": saved["param_groups"]})


@pytest.mark.parametrize("ours, ref, kwargs", [
    (SGD, torch.optim.SGD, dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3)),
    (AdamW, torch.optim.AdamW, dict(lr=0.01)),
])
def test_nn_layers_train_like_torch(ours, ref, kwargs):
    """minivision.nn layers + our optimizer == torch.nn layers + torch.optim, 20 steps, float64."""
    from minivision import nn

    rng = np.random.default_rng(6)
    model = nn.Sequential(nn.Linear(5, 16, rng=1, dtype="float64"), nn.ReLU(),
                          nn.Linear(16, 3, rng=2, dtype="float64"))
    twin = torch.nn.Sequential(torch.nn.Linear(5, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3)).double()
    twin.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in model.state_dict().items()})
    opt, ref_opt = ours(model.parameters(), **kwargs), ref(twin.parameters(), foreach=False, **kwargs)
    for _ in range(STEPS):
        x, y = rng.standard_normal((8, 5)), rng.standard_normal((8, 3))
        opt.zero_grad()
        out = model(x)
        model.backward(2 * (out - y) / out.size)
        opt.step()
        ref_opt.zero_grad()
        torch.mean((twin(torch.from_numpy(x)) - torch.from_numpy(y)) ** 2).backward()
        ref_opt.step()
    ref_state = twin.state_dict()
    for name, value in model.state_dict().items():
        diff = np.max(np.abs(value - ref_state[name].numpy()))
        assert diff <= 1e-12, f"{name} differs from torch by {diff:.3g}"


@pytest.mark.parametrize("cls", [SGD, Adam])
def test_a_gradient_of_the_wrong_shape_or_dtype_is_named_before_any_update(cls):
    a, b = Param(np.ones(3)), Param(np.ones(3))
    opt = cls([{"params": [a]}, {"params": [b]}], lr=0.1)
    a.grad, b.grad = np.ones(3), np.ones((1, 3))
    with pytest.raises(ValueError, match=r"param_groups\[1\]\['params'\]\[0\]\.grad has shape \(1, 3\)"):
        opt.step()
    assert np.array_equal(a.data, np.ones(3)) and not opt.state, "updated before the check"
    b.grad = np.ones(3, dtype=np.float32)
    with pytest.raises(TypeError, match="float32"):
        opt.step()


def test_numpy_scalar_hyper_parameters_keep_float32():
    """NEP 50: float32 array * np.float64 is float64; the step must not promote the parameter."""
    p, q = Param(np.ones(3, dtype=np.float32)), Param(np.ones(3, dtype=np.float32))
    sgd, adam = SGD([p], lr=np.float64(0.1), momentum=0.9), Adam([q], lr=np.float64(0.1))
    for _ in range(2):
        p.grad, q.grad = np.ones(3, dtype=np.float32), np.ones(3, dtype=np.float32)
        sgd.step()
        adam.step()
    assert p.data.dtype == np.float32 and q.data.dtype == np.float32
    sgd.param_groups[0]["lr"] = np.ones(())  # an array: would sync on a device
    with pytest.raises(TypeError, match="'lr'"):
        sgd.step()
