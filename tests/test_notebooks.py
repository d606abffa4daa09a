"""The lesson notebooks as a learner opens them: no missing data, no hard dependence on the test
extra, and an exercise section that names its file and its check."""

import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
# packages of the `test` extra only: a notebook may use them, but only behind a guard
TEST_ONLY = (
    "array_api_strict",
    "torch",
    "torchvision",
    "cv2",
    "pycocotools",
    "torchmetrics",
    "sklearn",
)


def _cells(path, kind):
    return [c.source for c in nbformat.read(path, 4).cells if c.cell_type == kind]


def test_there_is_a_notebook_per_lesson():
    assert [p.name[:2] for p in NOTEBOOKS] == [
        p.name[:2] for p in sorted((ROOT / "lessons").glob("[0-9][0-9]_*.py"))
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_test_only_packages_are_imported_behind_a_guard(path):
    unguarded = re.compile(rf"^(import|from) ({'|'.join(TEST_ONLY)})\b", re.M)
    for source in _cells(path, "code"):
        assert not unguarded.search(source), f"{path.name}: an unguarded import in\n{source[:300]}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_notebook_reads_outside_the_repository(path):
    for source in _cells(path, "code"):
        assert "shared/data" not in source, f"{path.name} reads the course workspace's data"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_the_exercise_section_names_its_file_and_check(path):
    nn = path.name[:2]
    (exercise,) = sorted((ROOT / "lessons").glob(f"{nn}_*.py"))
    sections = [s for s in _cells(path, "markdown") if re.search(r"^## Exercises?\b", s, re.M)]
    assert sections, f"{path.name} has no exercise section"
    text = sections[-1]
    assert f"lessons/{exercise.name}" in text
    assert f"minivision check {nn} lessons/{exercise.name}" in text
