"""Learning-rate schedulers against torch.optim.lr_scheduler: the same floats, step for step.

Each case builds the same schedule on a torch optimizer and on ours (two parameter groups with
different base rates) and compares ``get_last_lr()`` and every group's ``lr`` after
construction and after each of 50 steps, bitwise (the formulas are torch's, in torch's order).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from minivision.nn import lr_scheduler as ours
from minivision.nn.optim import SGD


class _Param:
    def __init__(self, data):
        self.data, self.grad = data, None


BASE_LRS = (0.1, 0.03)
STEPS = 50


def _optimizers():
    ref = torch.optim.SGD(
        [{"params": [torch.zeros(2, requires_grad=True)], "lr": BASE_LRS[0]},
         {"params": [torch.zeros(3, requires_grad=True)], "lr": BASE_LRS[1]}],
        lr=1.0,
    )
    mine = SGD(
        [{"params": [_Param(np.zeros(2))], "lr": BASE_LRS[0]},
         {"params": [_Param(np.zeros(3))], "lr": BASE_LRS[1]}],
        lr=1.0,
    )
    return ref, mine


class _Halving:
    """A callable object: its attributes travel in LambdaLR's state_dict."""

    def __init__(self, every):
        self.every = every

    def __call__(self, epoch):
        return 0.5 ** (epoch // self.every)


def _warmup_cosine(lib, opt):
    return lib.SequentialLR(
        opt,
        [lib.LinearLR(opt, start_factor=0.01, total_iters=10), lib.CosineAnnealingLR(opt, T_max=40)],
        milestones=[10],
    )


def _three_phases(lib, opt):
    return lib.SequentialLR(
        opt,
        [lib.ConstantLR(opt, factor=0.1, total_iters=5), lib.ExponentialLR(opt, gamma=0.9),
         lib.StepLR(opt, step_size=7, gamma=0.5)],
        milestones=[5, 20],
    )


CASES = {
    "StepLR": lambda lib, o: lib.StepLR(o, step_size=7, gamma=0.3),
    "MultiStepLR": lambda lib, o: lib.MultiStepLR(o, milestones=[30, 5, 12, 12], gamma=0.5),
    "CosineAnnealingLR": lambda lib, o: lib.CosineAnnealingLR(o, T_max=20, eta_min=0.001),
    "CosineAnnealingLR-T1": lambda lib, o: lib.CosineAnnealingLR(o, T_max=1),
    "LinearLR-warmup": lambda lib, o: lib.LinearLR(o, start_factor=0.001, total_iters=17),
    "LinearLR-decay": lambda lib, o: lib.LinearLR(o, start_factor=1.0, end_factor=0.05, total_iters=30),
    "ConstantLR": lambda lib, o: lib.ConstantLR(o, factor=0.25, total_iters=9),
    "ExponentialLR": lambda lib, o: lib.ExponentialLR(o, gamma=0.93),
    "LambdaLR": lambda lib, o: lib.LambdaLR(o, lr_lambda=lambda e: 1.0 / math.sqrt(e + 1)),
    "LambdaLR-per-group": lambda lib, o: lib.LambdaLR(o, [_Halving(6), lambda e: 0.97**e]),
    "SequentialLR-warmup-cosine": _warmup_cosine,
    "SequentialLR-three-phases": _three_phases,
}


def _lrs(opt):
    return [g["lr"] for g in opt.param_groups]


@pytest.mark.parametrize("case", list(CASES))
def test_lr_sequence_equals_torch(case):
    ref_opt, opt = _optimizers()
    ref, mine = CASES[case](torch.optim.lr_scheduler, ref_opt), CASES[case](ours, opt)
    assert mine.get_last_lr() == ref.get_last_lr(), f"{case}: after construction"
    for t in range(1, STEPS + 1):
        ref_opt.step()
        opt.step()
        ref.step()
        mine.step()
        assert mine.get_last_lr() == ref.get_last_lr(), (
            f"{case} at step {t}: got {mine.get_last_lr()}, torch {ref.get_last_lr()}"
        )
        assert _lrs(opt) == _lrs(ref_opt), f"{case} at step {t}: param_groups' lr"


@pytest.mark.parametrize("case", ["StepLR", "MultiStepLR", "CosineAnnealingLR", "LambdaLR-per-group",
                                  "SequentialLR-warmup-cosine", "SequentialLR-three-phases"])
def test_state_dict_resumes_the_same_sequence(case):
    """Stop at step 23, save (through JSON), rebuild, load, continue: the same 50 rates."""
    _, opt = _optimizers()
    full = CASES[case](ours, opt)
    expected = []
    for _ in range(STEPS):
        opt.step()
        full.step()
        expected.append(full.get_last_lr())

    _, opt = _optimizers()
    first = CASES[case](ours, opt)
    got = []
    for _ in range(23):
        opt.step()
        first.step()
        got.append(first.get_last_lr())
    saved_sched = json.loads(json.dumps(first.state_dict()))
    saved_groups = [{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups]

    _, opt = _optimizers()
    resumed = CASES[case](ours, opt)  # before the optimizer's state, as torch documents
    for group, saved in zip(opt.param_groups, saved_groups):
        group.update(saved)
    resumed.load_state_dict(saved_sched)
    for _ in range(23, STEPS):
        opt.step()
        resumed.step()
        got.append(resumed.get_last_lr())
    assert got == expected


def test_lambda_state_dict_keeps_callable_objects_and_drops_functions():
    _, opt = _optimizers()
    sched = ours.LambdaLR(opt, [_Halving(6), lambda e: 1.0])
    assert sched.state_dict()["lr_lambdas"] == [{"every": 6}, None]


def test_bad_arguments_name_the_argument():
    _, opt = _optimizers()
    with pytest.raises(TypeError, match="optimizer"):
        ours.StepLR(object(), step_size=3)
    with pytest.raises(ValueError, match="step_size"):
        ours.StepLR(opt, step_size=0)
    with pytest.raises(ValueError, match="T_max"):
        ours.CosineAnnealingLR(opt, T_max=0)
    with pytest.raises(ValueError, match="start_factor"):
        ours.LinearLR(opt, start_factor=0.0)
    with pytest.raises(ValueError, match="end_factor"):
        ours.LinearLR(opt, end_factor=1.5)
    with pytest.raises(ValueError, match="factor"):
        ours.ConstantLR(opt, factor=2.0)
    with pytest.raises(ValueError, match="lr_lambda"):
        ours.LambdaLR(opt, [lambda e: 1.0])
    with pytest.raises(ValueError, match="milestones"):
        ours.SequentialLR(opt, [ours.StepLR(opt, 3), ours.StepLR(opt, 4)], milestones=[])
    _, other = _optimizers()
    with pytest.raises(ValueError, match=r"schedulers\[1\]"):
        ours.SequentialLR(opt, [ours.StepLR(opt, 3), ours.StepLR(other, 4)], milestones=[3])
    with pytest.raises(KeyError, match="initial_lr"):
        ours.StepLR(_optimizers()[1], step_size=3, last_epoch=5)
