"""The training loop: a short honest run whose loss falls, atomic checkpoints, exact resume.

The model is a hand-written two-layer perceptron (Linear -> ReLU -> dropout -> Linear) in Array
API code, so the same test runs on every backend; its dropout masks come from the run's
persistent generator and its data from ``batch_rng(seed, step)``, so resuming exactly needs the
parameters, Adam's buffers, the learning-rate schedule and the generator state, all restored
from ``checkpoint.npz``.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from minivision import training
from minivision._backend import array_namespace, to_numpy
from minivision.nn import lr_scheduler
from minivision.nn.optim import SGD, Adam
from minivision.training import batch_rng, load_checkpoint, train


class Param:
    def __init__(self, data):
        self.data, self.grad = data, None


class MLP:
    """y = fc2(dropout(relu(fc1(x)))), forward caching what backward needs; torch's names."""

    def __init__(self, be, seed=0, hidden=32, p_drop=0.1):
        rng = np.random.default_rng(seed)
        self.be, self.p_drop, self.training = be, p_drop, True
        self.params = {
            "fc1.weight": Param(be.asarray(rng.standard_normal((hidden, 2)) * 0.7)),
            "fc1.bias": Param(be.asarray(np.zeros(hidden))),
            "fc2.weight": Param(be.asarray(rng.standard_normal((1, hidden)) * 0.3)),
            "fc2.bias": Param(be.asarray(np.zeros(1))),
        }

    def parameters(self):
        return list(self.params.values())

    def state_dict(self):
        return {k: p.data for k, p in self.params.items()}

    def load_state_dict(self, state):
        for k, p in self.params.items():
            p.data = state[k]

    def train(self):
        self.training = True

    def eval(self):
        self.training = False

    def __call__(self, x, rng=None):
        P = self.params
        xp = array_namespace(x)
        self.x = x
        self.z = x @ xp.matrix_transpose(P["fc1.weight"].data) + P["fc1.bias"].data  # (N, H)
        h = xp.maximum(self.z, 0.0)
        if self.training and rng is not None:
            keep = rng.uniform(size=tuple(h.shape)) >= self.p_drop
            self.mask = self.be.asarray(keep / (1 - self.p_drop))
            h = h * self.mask
        else:
            self.mask = None
        self.h = h
        return h @ xp.matrix_transpose(P["fc2.weight"].data) + P["fc2.bias"].data  # (N, 1)

    def backward(self, grad_out):
        P = self.params
        xp = array_namespace(grad_out)
        grads = {"fc2.weight": xp.matrix_transpose(grad_out) @ self.h,
                 "fc2.bias": xp.sum(grad_out, axis=0)}
        g_h = grad_out @ P["fc2.weight"].data
        if self.mask is not None:
            g_h = g_h * self.mask
        g_z = xp.where(self.z > 0, g_h, 0.0)
        grads["fc1.weight"] = xp.matrix_transpose(g_z) @ self.x
        grads["fc1.bias"] = xp.sum(g_z, axis=0)
        for k, g in grads.items():
            P[k].grad = g if P[k].grad is None else P[k].grad + g


def _target(x):
    return np.sin(2.0 * x[:, :1]) * np.cos(x[:, 1:])


def _setup(be, init_seed=0, optimizer="adam", out_steps=60):
    model = MLP(be, init_seed)
    if optimizer == "adam":
        opt = Adam(model.parameters(), lr=0.02)
        sched = lr_scheduler.SequentialLR(
            opt, [lr_scheduler.LinearLR(opt, 0.1, total_iters=10),
                  lr_scheduler.CosineAnnealingLR(opt, T_max=out_steps)], milestones=[10])
    else:
        opt = SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True)
        sched = lr_scheduler.StepLR(opt, step_size=25, gamma=0.5)

    def batch_fn(step, rng):
        x = rng.uniform(-2, 2, size=(64, 2))
        return be.asarray(x), be.asarray(_target(x))

    def step_fn(batch, rng):
        x, y = batch
        xp = array_namespace(x)
        out = model(x, rng)
        diff = out - y
        model.backward(2.0 * diff / diff.shape[0])
        return xp.mean(diff * diff)

    return model, opt, sched, step_fn, batch_fn


def _run(be, out_dir, steps, *, init_seed=0, optimizer="adam", **kwargs):
    model, opt, sched, step_fn, batch_fn = _setup(be, init_seed, optimizer)
    kwargs.setdefault("checkpoint_every", 10)
    kwargs.setdefault("progress", False)
    kwargs.setdefault("plot", False)
    history = train(model, opt, step_fn, batch_fn, steps, seed=7, out_dir=out_dir,
                    scheduler=sched, **kwargs)
    return model, opt, sched, history


def _load(path, be):
    model, opt, sched, _, _ = _setup(be)
    return load_checkpoint(path, model, opt, scheduler=sched)


def _eval_mse(model):
    x = np.random.default_rng(123).uniform(-2, 2, size=(256, 2))
    out = to_numpy(model(model.be.asarray(x)))
    return {"mse": float(np.mean((out - _target(x)) ** 2))}


@pytest.fixture
def numpy_be():
    import array_api_compat.numpy as npx

    from tests.conftest import Backend

    return Backend("numpy", npx, "cpu", npx.float64)


def test_loss_falls_and_files_are_written(tmp_path, numpy_be):
    stream = io.StringIO()
    model, _, _, history = _run(numpy_be, tmp_path, 300, checkpoint_every=100, log_every=25,
                                eval_fn=_eval_mse, progress=True, stream=stream, plot=True)
    first, last = np.mean(history.losses[:10]), np.mean(history.losses[-30:])
    assert len(history.losses) == 300
    assert last < 0.15 * first, f"loss fell only from {first:.4f} to {last:.4f}"
    before = _eval_mse(MLP(numpy_be, 0))["mse"]
    assert history.evals[-1]["mse"] < 0.15 * before, (history.evals, before)
    assert [e["step"] for e in history.evals] == [100, 200, 300]
    assert model.training, "train() must leave the model in training mode"
    assert (tmp_path / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    record = json.loads((tmp_path / "history.json").read_text())
    assert record["losses"] == history.losses and record["steps"] == 300
    with np.load(tmp_path / "checkpoint.npz", allow_pickle=False) as npz:
        meta = json.loads(str(npz["meta"]))
        assert meta["step"] == 300 and meta["seed"] == 7
        assert {"model/fc1.weight", "optimizer/0/exp_avg", "losses"} <= set(npz.files)
    text = stream.getvalue()
    assert "step 300/300" in text and "steps/s" in text and "left" in text and "lr " in text
    assert "eval at step 100: mse" in text


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_resume_is_bit_identical(be, no_sync, tmp_path, optimizer):
    """2k steps in one go == k steps, stop, rebuild everything (other init), resume to 2k.

    Under ``no_sync``: the loop reads the device only through its explicit copies (the logged
    losses, the checkpoint), never by an implicit ``float()`` of a device array.
    """
    k = 30
    full_model, full_opt, full_sched, full = _run(be, tmp_path / "full", 2 * k, optimizer=optimizer)
    _run(be, tmp_path / "split", k, optimizer=optimizer)
    model, opt, sched, resumed = _run(be, tmp_path / "split", 2 * k, init_seed=99,
                                      optimizer=optimizer)
    assert resumed.resumed_from == k
    for name, p in model.params.items():
        a, b = to_numpy(p.data), to_numpy(full_model.params[name].data)
        assert np.array_equal(a, b), f"{name} differs after resuming ({be.name})"
    state, full_state = opt.state_dict()["state"], full_opt.state_dict()["state"]
    for i in full_state:
        for key, value in full_state[i].items():
            same = state[i][key] == value if key == "step" else np.array_equal(
                to_numpy(state[i][key]), to_numpy(value))
            assert same, (i, key)
    assert sched.get_last_lr() == full_sched.get_last_lr()
    assert resumed.losses == full.losses


def test_interrupted_between_checkpoints_resumes_exactly(tmp_path, numpy_be):
    full_model, _, _, full = _run(numpy_be, tmp_path / "full", 60)
    model, opt, sched, step_fn, batch_fn = _setup(numpy_be)
    calls = []

    def dying_step(batch, rng):
        calls.append(1)
        if len(calls) == 26:
            raise KeyboardInterrupt
        return step_fn(batch, rng)

    with pytest.raises(KeyboardInterrupt):
        train(model, opt, dying_step, batch_fn, 60, seed=7, out_dir=tmp_path / "cut",
              scheduler=sched, checkpoint_every=10, progress=False, plot=False)
    meta, _ = _load(tmp_path / "cut" / "checkpoint.npz", numpy_be)
    assert meta["step"] == 20
    model, _, _, resumed = _run(numpy_be, tmp_path / "cut", 60, init_seed=5)
    assert resumed.resumed_from == 20 and resumed.losses == full.losses
    for name, p in model.params.items():
        assert np.array_equal(p.data, full_model.params[name].data), name


def test_checkpoint_write_is_atomic(tmp_path, numpy_be, monkeypatch):
    """A save that dies half-way leaves the previous checkpoint whole and no temporary file."""
    real = training._write_npz
    writes = []

    def failing(f, arrays):
        writes.append(1)
        if len(writes) == 2:
            f.write(b"PK\x03\x04 half a zip file")
            raise OSError("disk full")
        real(f, arrays)

    monkeypatch.setattr(training, "_write_npz", failing)
    with pytest.raises(OSError, match="disk full"):
        _run(numpy_be, tmp_path, 30)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.npz", "history.json"]
    meta, history = _load(tmp_path / "checkpoint.npz", numpy_be)
    assert meta["step"] == 10 and len(history.losses) == 10
    monkeypatch.setattr(training, "_write_npz", real)
    model, _, _, resumed = _run(numpy_be, tmp_path, 30)
    full_model, _, _, full = _run(numpy_be, tmp_path / "full", 30)
    assert resumed.losses == full.losses
    assert all(np.array_equal(p.data, full_model.params[n].data) for n, p in model.params.items())


def test_batches_are_a_function_of_seed_and_step():
    a, b = batch_rng(3, 17).standard_normal(5), batch_rng(3, 17).standard_normal(5)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, batch_rng(3, 18).standard_normal(5))
    assert not np.array_equal(a, batch_rng(4, 17).standard_normal(5))


def test_bad_input_and_mismatched_checkpoints(tmp_path, numpy_be):
    model, opt, sched, step_fn, batch_fn = _setup(numpy_be)
    for kwargs, name in [({"steps": -1}, "steps"), ({"seed": -3}, "seed"),
                         ({"checkpoint_every": 0}, "checkpoint_every"), ({"log_every": 0}, "log_every")]:
        args = {"steps": 5, "seed": 0, **kwargs}
        with pytest.raises(ValueError, match=name):
            train(model, opt, step_fn, batch_fn, args.pop("steps"), out_dir=tmp_path, **args)
    with pytest.raises(ValueError, match="scalar loss"):
        train(model, opt, lambda b, r: np.zeros(3), batch_fn, 5, seed=0, out_dir=tmp_path / "s",
              progress=False, plot=False)
    with pytest.raises(TypeError, match="batch_fn"):
        train(model, opt, step_fn, None, 5, seed=0, out_dir=tmp_path)
    _run(numpy_be, tmp_path / "run", 20)
    with pytest.raises(ValueError, match="seed 7, got seed=8"):
        model, opt, sched, step_fn, batch_fn = _setup(numpy_be)
        train(model, opt, step_fn, batch_fn, 40, seed=8, out_dir=tmp_path / "run", scheduler=sched)
    with pytest.raises(ValueError, match="beyond steps=10"):
        _run(numpy_be, tmp_path / "run", 10)
    wide = MLP(numpy_be, hidden=16)
    saved = tmp_path / "run" / "checkpoint.npz"
    with pytest.raises(ValueError, match="'fc1.weight'"):
        load_checkpoint(saved, wide, Adam(wide.parameters()), scheduler=sched)
    with pytest.raises(ValueError, match="Adam state"):
        load_checkpoint(saved, model, SGD(model.parameters()), scheduler=sched)
    before = [p.data for p in model.parameters()]
    with pytest.raises(ValueError, match="with a scheduler"):
        load_checkpoint(saved, model, opt)
    assert all(a is p.data for a, p in zip(before, model.parameters())), "changed on error"
    # a finished run called again does nothing and keeps its history
    _, _, _, again = _run(numpy_be, tmp_path / "run", 20)
    assert again.resumed_from == 20 and len(again.losses) == 20


def test_a_diverging_loss_stops_the_run(tmp_path, numpy_be):
    model, opt, sched, step_fn, batch_fn = _setup(numpy_be)
    calls = []

    def step_nan_at_4(batch, rng):
        calls.append(1)
        loss = step_fn(batch, rng)
        return loss * float("nan") if len(calls) == 4 else loss

    with pytest.raises(FloatingPointError, match="nan at step 4"):
        train(model, opt, step_nan_at_4, batch_fn, 20, seed=0, out_dir=tmp_path, log_every=5,
              progress=False, plot=False)


# ----------------------------------------------------------------------------- with nn layers

X0_CLASS = {0: 0, 1: 0, 3: 1, 5: 2, 6: 2}  # the square's left column -> its class


def _squares(rng, n):
    """(n, 1, 8, 8) float32 noisy images with one bright 2x2 square; label: where it is."""
    x0 = rng.choice(list(X0_CLASS), size=n)
    y0 = rng.integers(0, 7, size=n)
    images = rng.normal(0.0, 0.3, size=(n, 1, 8, 8))
    for i in range(n):
        images[i, 0, y0[i]:y0[i] + 2, x0[i]:x0[i] + 2] += 2.0
    labels = np.array([X0_CLASS[int(v)] for v in x0], dtype=np.int64)
    return images.astype(np.float32), labels


def _cnn_setup(init_seed=0):
    from minivision import cross_entropy, cross_entropy_backward, nn

    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1, rng=init_seed), nn.BatchNorm2d(4), nn.ReLU(),
        nn.MaxPool2d(2), nn.Flatten(), nn.Dropout(0.2, rng=init_seed + 1), nn.Linear(64, 3, rng=init_seed),
    )
    opt = SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    sched = lr_scheduler.StepLR(opt, step_size=40, gamma=0.5)

    def batch_fn(step, rng):
        return _squares(rng, 32)

    def step_fn(batch, rng):
        images, labels = batch
        logits = model(images)
        model.backward(cross_entropy_backward(logits, labels))
        return cross_entropy(logits, labels)

    return model, opt, sched, step_fn, batch_fn


def _cnn_run(out_dir, steps, init_seed=0):
    model, opt, sched, step_fn, batch_fn = _cnn_setup(init_seed)
    history = train(model, opt, step_fn, batch_fn, steps, seed=3, out_dir=out_dir,
                    scheduler=sched, checkpoint_every=20, progress=False, plot=False)
    return model, history


def test_a_small_cnn_from_nn_layers_learns(tmp_path):
    model, history = _cnn_run(tmp_path, 120)
    first, last = np.mean(history.losses[:10]), np.mean(history.losses[-20:])
    assert last < 0.25 * first, f"loss fell only from {first:.3f} to {last:.3f}"
    images, labels = _squares(np.random.default_rng(2024), 400)
    model.eval()
    accuracy = np.mean(np.argmax(model(images), axis=1) == labels)
    assert accuracy >= 0.95, f"held-out accuracy {accuracy:.3f}"


def test_a_cnn_with_batchnorm_and_dropout_resumes_bit_identically(tmp_path):
    """BatchNorm's running statistics and Dropout's own generator come back too."""
    full, full_history = _cnn_run(tmp_path / "full", 60)
    _cnn_run(tmp_path / "split", 30)
    resumed, history = _cnn_run(tmp_path / "split", 60, init_seed=11)
    assert history.resumed_from == 30 and history.losses == full_history.losses
    full_state = full.state_dict()
    for name, value in resumed.state_dict().items():
        assert np.array_equal(value, full_state[name]), f"{name} differs after resuming"
    assert {"1.running_mean", "1.num_batches_tracked"} <= set(full_state)
    r = resumed[5].rng.bit_generator.state
    assert r == full[5].rng.bit_generator.state, "Dropout's generator was not restored"
