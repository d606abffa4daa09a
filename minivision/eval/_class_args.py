"""The class-count arguments of the semantic-segmentation scores, checked in one place."""

from __future__ import annotations


def check_class_arguments(num_classes, ignore_index) -> None:
    """``num_classes`` a positive int; ``ignore_index`` None or an int that is not a class."""
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
    if ignore_index is not None and (
        not isinstance(ignore_index, int) or 0 <= ignore_index < num_classes
    ):
        raise ValueError(
            f"ignore_index must be an int outside [0, {num_classes}) or None, got {ignore_index!r}"
        )
