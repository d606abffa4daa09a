"""Lesson 09 battery: a network that learns -- backward passes, optimizer steps, BatchNorm.

The expected values come from minivision's own layers and optimizers (``minivision.nn``: Linear,
ReLU, BatchNorm2d, SGD, Adam, AdamW, cross_entropy_backward), which the nn tests pin to
torch.nn / torch.optim. The mistakes are the classic ones: the batch size divided out twice (the
upstream gradient of a mean loss already carries 1/N), ReLU's gradient 1 at exactly 0, a shared
weight's gradient overwritten instead of accumulated, gradients never zeroed between steps,
weight decay applied to the wrong term (after the momentum buffer; after the Adam update; as an
L2 gradient in AdamW instead of decoupled), Adam's bias correction left out, BatchNorm using
batch statistics at eval time, the running variance biased, and momentum's weights swapped.
"""

from __future__ import annotations

import numpy as np

from ..nn import BatchNorm2d, Linear, Parameter, ReLU
from ..nn import losses as L
from ..nn.optim import SGD, Adam, AdamW
from ._core import Battery, Case, FunctionBattery, Mistake

# ----------------------------------------------------------------------------- references


def _linear(weight, bias=True):
    out_f, in_f = weight.shape
    layer = Linear(in_f, out_f, bias=bias, rng=0, dtype="float64")
    state = {"weight": weight} | ({"bias": np.zeros(out_f)} if bias else {})
    layer.load_state_dict(state)
    return layer


def _linear_backward(x, weight, grad_output):
    layer = _linear(weight)
    layer(x)
    grad_x = layer.backward(grad_output)
    return grad_x, layer.weight.grad, layer.bias.grad


def _relu_backward(x, grad_output):
    relu = ReLU()
    relu(x)
    return relu.backward(grad_output)


def _tied_linear_backward(x1, x2, weight, grad_y1, grad_y2):
    layer = _linear(weight, bias=False)
    for x, g in ((x1, grad_y1), (x2, grad_y2)):
        layer(x)
        layer.backward(g)
    return layer.weight.grad


def _softmax_ce_backward(logits, labels):
    return L.cross_entropy_backward(logits, labels)


def _mse_grad(pred, y):
    return 2.0 * (pred - y) / pred.size


def _gradient_descent(x, y, weight, lr, steps):
    layer = _linear(weight, bias=False)
    optimizer = SGD(layer.parameters(), lr=lr)
    for _ in range(steps):
        optimizer.zero_grad()
        layer.backward(_mse_grad(layer(x), y))
        optimizer.step()
    return layer.weight.data


def _one_step(optimizer_cls, param, grad, state, **hyper):
    p = Parameter(np.array(param, dtype=np.float64))
    optimizer = optimizer_cls([p], **hyper)
    if state:
        optimizer.load_state_dict({"state": {0: state}, "param_groups": optimizer.state_dict()["param_groups"]})
    p.grad = grad
    optimizer.step()
    return p, optimizer.state[id(p)] if id(p) in optimizer.state else {}


def _sgd_momentum_step(param, grad, buf, lr, momentum=0.9, weight_decay=0.0, nesterov=False):
    state = None if buf is None else {"momentum_buffer": buf}
    p, st = _one_step(SGD, param, grad, state, lr=lr, momentum=momentum,
                      weight_decay=weight_decay, nesterov=nesterov)  # fmt: skip
    return p.data, st["momentum_buffer"]


def _adam_step(param, grad, exp_avg, exp_avg_sq, step, lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
               weight_decay=0.0, decoupled=False):  # fmt: skip
    state = {"step": step - 1, "exp_avg": exp_avg, "exp_avg_sq": exp_avg_sq}
    p, st = _one_step(AdamW if decoupled else Adam, param, grad, state, lr=lr, betas=betas,
                      eps=eps, weight_decay=weight_decay)  # fmt: skip
    return p.data, st["exp_avg"], st["exp_avg_sq"]


def _batchnorm_forward(x, weight, bias, running_mean, running_var, training, momentum=0.1,
                       eps=1e-5):  # fmt: skip
    bn = BatchNorm2d(x.shape[1], eps=eps, momentum=momentum, dtype="float64")
    bn.load_state_dict({"weight": weight, "bias": bias, "running_mean": running_mean,
                        "running_var": running_var, "num_batches_tracked": np.asarray(0)})  # fmt: skip
    bn.train(training)
    y = bn(x)
    return y, bn.running_mean, bn.running_var


# ----------------------------------------------------------------------------- inputs

_rng = np.random.default_rng(9)
N, IN, OUT = 5, 4, 3
X = np.round(_rng.normal(size=(N, IN)), 3)
W = np.round(_rng.normal(size=(OUT, IN)), 3)
G = np.round(_rng.normal(size=(N, OUT)) / N, 4)  # a mean loss's upstream gradient carries 1/N
X_ZEROS = np.array([[-1.5, 0.0, 2.0, 0.0], [0.0, 0.3, -0.2, 1e-9]])
G_ZEROS = np.array([[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]])
X2 = np.round(_rng.normal(size=(7, IN)), 3)
G2 = np.round(_rng.normal(size=(7, OUT)), 3)
LOGITS = np.round(_rng.normal(0, 2, (6, 4)), 3)
LABELS = np.array([0, 3, 1, 1, 2, 0])
BIG_LOGITS = np.array([[800.0, 0.0, -5.0], [0.0, 900.0, -10.0]])
REG_X = np.round(_rng.normal(size=(16, 3)), 3)
REG_Y = REG_X @ np.array([[1.0, -2.0, 0.5], [0.3, 0.0, 1.0]]).T
P = np.round(_rng.normal(size=(3, 4)), 3)
GRAD = np.round(_rng.normal(size=(3, 4)), 3)
BUF = np.round(_rng.normal(size=(3, 4)), 3)
M1 = np.round(_rng.normal(0, 0.1, (3, 4)), 4)
V1 = np.round(_rng.uniform(0.001, 0.01, (3, 4)), 5)
BN_X = np.round(_rng.normal(1.0, 2.0, (4, 3, 2, 3)), 3)
BN_W = np.array([1.0, 0.5, 2.0])
BN_B = np.array([0.0, 0.1, -0.3])
BN_MEAN = np.array([0.5, 1.5, -0.5])
BN_VAR = np.array([2.0, 0.5, 4.0])

# ----------------------------------------------------------------------------- mistakes


def _linear_twice_divided(x, weight, grad_output):
    n = x.shape[0]
    return (grad_output @ weight, grad_output.T @ x / n, grad_output.sum(0) / n)


def _relu_one_at_zero(x, grad_output):
    return np.where(x >= 0, grad_output, 0.0)


def _relu_mask_only(x, grad_output):
    return (x > 0).astype(float)


def _tied_overwritten(x1, x2, weight, grad_y1, grad_y2):
    return grad_y2.T @ x2


def _softmax(z):
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def _ce_backward_with(scale=None, flip=False):
    def backward(logits, labels):
        n = logits.shape[0]
        g = _softmax(logits) - np.eye(logits.shape[1])[labels]
        g = -g if flip else g
        return g / (n * n if scale == "twice" else 1 if scale == "sum" else n)

    return backward


def _gd_without_zeroing(x, y, weight, lr, steps):
    w, grad = np.array(weight, dtype=float), np.zeros_like(weight, dtype=float)
    for _ in range(steps):
        grad = grad + _mse_grad(x @ w.T, y).T @ x
        w = w - lr * grad
    return w


def _sgd_with(decay_after_momentum=False, damped_first=False, lr_inside=False):
    def step(param, grad, buf, lr, momentum=0.9, weight_decay=0.0, nesterov=False):
        g = grad if decay_after_momentum else grad + weight_decay * param
        if lr_inside:
            buf = lr * g if buf is None else momentum * buf + lr * g
            return param - buf, buf
        buf = ((1 - momentum) * g if damped_first else g) if buf is None else momentum * buf + g
        d = g + momentum * buf if nesterov else buf
        if decay_after_momentum:
            d = d + weight_decay * param
        return param - lr * d, buf

    return step


def _adam_with(no_correction=False, decay_after=False, coupled_for_adamw=False,
               eps_inside=False):  # fmt: skip
    def step(param, grad, exp_avg, exp_avg_sq, step, lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
             weight_decay=0.0, decoupled=False):  # fmt: skip
        b1, b2 = betas
        decoupled_now = decoupled and not coupled_for_adamw
        p = param
        if weight_decay and not decay_after:
            if decoupled_now:
                p = p * (1 - lr * weight_decay)
            else:
                grad = grad + weight_decay * param
        m = b1 * exp_avg + (1 - b1) * grad
        v = b2 * exp_avg_sq + (1 - b2) * grad * grad
        c1, c2 = (1.0, 1.0) if no_correction else (1 - b1**step, 1 - b2**step)
        denom = np.sqrt(v / c2 + eps) if eps_inside else np.sqrt(v / c2) + eps
        p = p - lr / c1 * m / denom
        if weight_decay and decay_after:
            p = p - lr * weight_decay * param
        return p, m, v

    return step


def _bn_with(batch_at_eval=False, biased_running=False, swapped_momentum=False):
    def forward(x, weight, bias, running_mean, running_var, training, momentum=0.1, eps=1e-5):
        count = x.shape[0] * x.shape[2] * x.shape[3]
        mean, var = x.mean((0, 2, 3)), x.var((0, 2, 3))
        if training:
            batch_var = var if biased_running else var * count / (count - 1)
            keep = momentum if swapped_momentum else 1 - momentum
            running_mean = keep * running_mean + (1 - keep) * mean
            running_var = keep * running_var + (1 - keep) * batch_var
        elif not batch_at_eval:
            mean, var = running_mean, running_var
        x_hat = (x - mean[None, :, None, None]) / np.sqrt(var[None, :, None, None] + eps)
        return (x_hat * weight[None, :, None, None] + bias[None, :, None, None],
                running_mean, running_var)  # fmt: skip

    return forward


TWICE = (
    "dividing by the batch size twice",
    "the upstream gradient of a mean loss already carries 1/N; the weight gradient is "
    "grad_output.T @ x and the bias gradient grad_output.sum(0), with no further division",
)

BATTERY = Battery(
    lesson="09",
    title="lesson 09, a network that learns",
    functions=[
        FunctionBattery(
            "linear_backward",
            _linear_backward,
            [
                Case("5 samples, 4 -> 3 features", (X, W, G)),
                Case("one sample", (X[:1], W, G[:1] * N)),
            ],
            [Mistake(*TWICE, _linear_twice_divided)],
            rtol=1e-10,
        ),
        FunctionBattery(
            "relu_backward",
            _relu_backward,
            [
                Case("inputs with exact zeros", (X_ZEROS, G_ZEROS)),
                Case("random inputs", (X, np.ones_like(X) * 0.5)),
            ],
            [
                Mistake(
                    "ReLU's gradient 1 at exactly 0",
                    "max(x, 0) has gradient 0 where x <= 0 (torch's convention at x = 0): "
                    "use x > 0, not x >= 0",
                    _relu_one_at_zero,
                ),
                Mistake(
                    "returning the mask without the upstream gradient",
                    "the chain rule multiplies: grad_input = grad_output * (x > 0)",
                    _relu_mask_only,
                ),
            ],
        ),
        FunctionBattery(
            "tied_linear_backward",
            _tied_linear_backward,
            [Case("one weight used by two inputs", (X, X2, W, G, G2))],
            [
                Mistake(
                    "overwriting instead of accumulating a shared parameter's gradient",
                    "a weight used twice receives the sum of both uses' gradients "
                    "(grad_y1.T @ x1 + grad_y2.T @ x2): gradients accumulate, never replace",
                    _tied_overwritten,
                )
            ],
            rtol=1e-10,
        ),
        FunctionBattery(
            "softmax_cross_entropy_backward",
            _softmax_ce_backward,
            [
                Case("6 samples, 4 classes", (LOGITS, LABELS)),
                Case("logits 800 and 900", (BIG_LOGITS, np.array([0, 2]))),
            ],
            [
                Mistake(
                    "dividing by the batch size twice",
                    "the mean over N samples contributes one 1/N: (softmax - onehot) / N",
                    _ce_backward_with("twice"),
                ),
                Mistake(
                    "the gradient of the summed loss",
                    "the loss is the mean over the batch: divide (softmax - onehot) by N",
                    _ce_backward_with("sum"),
                ),
                Mistake(
                    "onehot - softmax (the wrong sign)",
                    "d(-log p_t)/d logits = softmax - onehot: raising the true class's logit "
                    "must lower the loss",
                    _ce_backward_with(flip=True),
                ),
            ],
            rtol=1e-10,
        ),
        FunctionBattery(
            "gradient_descent",
            _gradient_descent,
            [
                Case("5 steps, lr 0.1", (REG_X, REG_Y, np.zeros((2, 3)), 0.1, 5)),
                Case("20 steps, lr 0.05", (REG_X, REG_Y, np.ones((2, 3)), 0.05, 20)),
            ],
            [
                Mistake(
                    "forgetting to zero gradients",
                    "gradients accumulate by design (a shared weight sums its uses), so each "
                    "step must start from zero (optimizer.zero_grad()), or step t moves by the "
                    "sum of all gradients so far",
                    _gd_without_zeroing,
                )
            ],
            rtol=1e-10,
        ),
        FunctionBattery(
            "sgd_momentum_step",
            _sgd_momentum_step,
            [
                Case("first step (no buffer yet)", (P, GRAD, None, 0.1)),
                Case("a later step", (P, GRAD, BUF, 0.1)),
                Case("a later step, weight decay 0.01", (P, GRAD, BUF, 0.1), dict(weight_decay=0.01)),
                Case("first step, weight decay 0.1", (P, GRAD, None, 0.1), dict(weight_decay=0.1)),
                Case("a later step, Nesterov", (P, GRAD, BUF, 0.1), dict(nesterov=True)),
            ],
            [
                Mistake(
                    "weight decay applied to the update instead of the gradient",
                    "torch's SGD adds weight_decay * param to the gradient *before* the "
                    "momentum buffer, so the decay is remembered by the buffer too",
                    _sgd_with(decay_after_momentum=True),
                ),
                Mistake(
                    "dampening the first step",
                    "the buffer starts as the gradient itself (buf = g at step 1); only later "
                    "steps compute momentum * buf + g",
                    _sgd_with(damped_first=True),
                ),
                Mistake(
                    "the learning rate inside the buffer",
                    "torch keeps buf = momentum * buf + g and steps by lr * buf (Sutskever's "
                    "form v = momentum * v + lr * g agrees only while lr never changes)",
                    _sgd_with(lr_inside=True),
                ),
            ],
            rtol=1e-10,
        ),
        FunctionBattery(
            "adam_step",
            _adam_step,
            [
                Case("step 1 from zero moments", (P, GRAD, np.zeros_like(P), np.zeros_like(P), 1)),
                Case("step 3", (P, GRAD, M1, V1, 3), dict(lr=0.01)),
                Case("step 2, Adam weight decay 0.1", (P, GRAD, M1, V1, 2),
                     dict(lr=0.01, weight_decay=0.1)),  # fmt: skip
                Case("step 2, AdamW weight decay 0.1", (P, GRAD, M1, V1, 2),
                     dict(lr=0.01, weight_decay=0.1, decoupled=True)),  # fmt: skip
                Case("step 50, betas (0.8, 0.99)", (P, GRAD, M1, V1, 50),
                     dict(betas=(0.8, 0.99), eps=1e-3)),  # fmt: skip
            ],
            [
                Mistake(
                    "Adam's bias correction left out",
                    "m and v start at 0, so early on they are too small by (1 - beta^t): "
                    "step by lr / (1 - beta1^t) * m / (sqrt(v / (1 - beta2^t)) + eps)",
                    _adam_with(no_correction=True),
                ),
                Mistake(
                    "weight decay added after the Adam update",
                    "Adam's weight decay is an L2 term: add weight_decay * param to the "
                    "gradient before the moments (shrinking param outside the update is "
                    "AdamW's decoupled decay)",
                    _adam_with(decay_after=True),
                ),
                Mistake(
                    "AdamW's decay put into the gradient (coupled L2)",
                    "AdamW decouples the decay: param * (1 - lr * weight_decay), not "
                    "grad + weight_decay * param (which Adam's normalisation then rescales)",
                    _adam_with(coupled_for_adamw=True),
                ),
                Mistake(
                    "eps inside the square root",
                    "torch adds eps after the root: sqrt(v_hat) + eps",
                    _adam_with(eps_inside=True),
                ),
            ],
            rtol=1e-9,
        ),
        FunctionBattery(
            "batchnorm_forward",
            _batchnorm_forward,
            [
                Case("training mode", (BN_X, BN_W, BN_B, BN_MEAN, BN_VAR, True)),
                Case("eval mode", (BN_X, BN_W, BN_B, BN_MEAN, BN_VAR, False)),
                Case("training, momentum 0.3", (BN_X, BN_W, BN_B, BN_MEAN, BN_VAR, True),
                     dict(momentum=0.3)),  # fmt: skip
            ],
            [
                Mistake(
                    "BatchNorm using batch statistics at eval time",
                    "in eval mode normalise with running_mean and running_var (a fixed affine "
                    "map), so a prediction does not depend on the rest of the batch",
                    _bn_with(batch_at_eval=True),
                ),
                Mistake(
                    "the running variance from the biased batch variance",
                    "normalise with the biased variance (divide by N*H*W) but update "
                    "running_var with the unbiased one (times count / (count - 1)), as torch",
                    _bn_with(biased_running=True),
                ),
                Mistake(
                    "momentum's weights swapped",
                    "running = (1 - momentum) * running + momentum * batch: momentum is the "
                    "weight of the *new* batch (the opposite of an optimizer's momentum)",
                    _bn_with(swapped_momentum=True),
                ),
            ],
            rtol=1e-10,
        ),
    ],
)
