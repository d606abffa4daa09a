"""Grade a learner's exercise file: ``minivision check LESSON FILE``.

Each lesson has a *battery*: for every function the exercise asks for, a list of cases (inputs
a learner can read) and a bank of classic mistakes. The checker runs the learner's function on
every case, compares with minivision's own implementation (which the test suite pins to
torchvision), and when a case fails it runs each known-wrong variant on the same input: if the
learner's output matches one, the report names the mistake and how to fix it. A learner needs
NumPy only -- no torch.

Each case runs in a worker process with a time limit (``--timeout``), so an infinite loop is
reported, not waited for; the report streams as the cases finish. A file that cannot be imported
gets one paragraph (file, line, code, what to do), and an error is placed at the learner's own
line. Before the values, every result must keep its contract: an array, the stated dtype, a new
array (not an input handed back), the right shape.

Adding a lesson: write ``checks/lessonNN.py`` with a ``BATTERY``; ``lesson_battery`` finds every
``lessonNN`` module of this package by its name (``available_lessons``), so nothing else is registered.
"""

from __future__ import annotations

from ._core import Battery, Case, Mistake, Report, check_file, check_module, lesson_battery

__all__ = [
    "Battery",
    "Case",
    "Mistake",
    "Report",
    "check_file",
    "check_module",
    "lesson_battery",
]
