"""``Sequential``: modules applied in order, and their backward passes in reverse order."""

from __future__ import annotations

from collections import OrderedDict

from .module import Module

__all__ = ["Sequential"]


class Sequential(Module):
    """Modules applied in order; ``backward`` runs their backward passes in reverse order.

    As ``torch.nn.Sequential``: children are named ``"0"``, ``"1"``, ... (so parameters are
    ``"0.weight"``), ``seq[i]`` indexes, ``seq[a:b]`` is a Sequential of the same modules,
    ``len(seq)`` and iteration work, ``append`` adds one at the end.
    """

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            for name, module in modules[0].items():
                self.add_module(name, module)
        else:
            for i, module in enumerate(modules):
                if not isinstance(module, Module):
                    raise TypeError(
                        f"Sequential argument {i} must be a Module, got {type(module).__name__}"
                    )
                self.add_module(str(i), module)

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __getitem__(self, index):
        items = list(self._modules.items())
        if isinstance(index, slice):
            return Sequential(OrderedDict(items[index]))
        return items[index][1]

    def append(self, module):
        self.add_module(str(len(self)), module)
        return self

    def forward(self, x):
        for module in self:
            x = module(x)
        return x

    def backward(self, grad_output):
        for module in reversed(list(self)):
            grad_output = module.backward(grad_output)
        return grad_output
