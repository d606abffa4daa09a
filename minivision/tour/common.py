"""What every tour stage shares: the default photograph and its named objects, the image loader,
the :class:`Stage` record and the figure writer.

Host island (DESIGN.md §2): NumPy and matplotlib on the host.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..ops import boxes as B

__all__ = ["ASTRONAUT_BOXES", "Stage", "save_figure", "load_image", "demo_boxes"]

# The default image's objects, in its pixel coordinates (skimage.data.astronaut, 512 x 512).
ASTRONAUT_BOXES = {
    "face": (170, 35, 265, 165),
    "head": (148, 12, 300, 178),
    "collar": (110, 150, 310, 290),
    "patch": (135, 345, 210, 420),
    "helmet": (278, 338, 512, 512),
    "shuttle": (362, 0, 470, 262),
}


def save_figure(fig, path: Path, dpi: int = 90, tight_layout: bool = True) -> None:
    """Write ``fig`` as a PNG (cropped to its content) and free it: every stage ends this way."""
    import matplotlib.pyplot as plt

    if tight_layout:
        fig.tight_layout()
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    plt.close(fig)


@dataclass
class Stage:
    title: str
    text: str
    figures: list[str] = field(default_factory=list)


def load_image(path=None):
    """The photograph to tour: ``path`` if given, else scikit-image's astronaut (no download)."""
    if path is None:
        from skimage import data

        return data.astronaut(), "skimage.data.astronaut()"
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"IMAGE must be an image file, {path} does not exist")
    from skimage import io

    try:
        image = io.imread(path)
    except Exception as err:  # imageio / PIL raise many kinds for a file that is not a picture
        raise ValueError(
            f"IMAGE must be a picture scikit-image can read (PNG, JPEG, ...), {path} is not "
            f"({type(err).__name__}: {err})"
        ) from None
    if image.dtype == np.uint16:  # a 16-bit PNG: keep the high byte of each sample
        image = (image >> 8).astype(np.uint8)
    elif image.dtype == bool:
        image = image.astype(np.uint8) * 255
    elif image.dtype != np.uint8:
        raise ValueError(f"IMAGE must hold 8- or 16-bit samples, {path} holds {image.dtype}")
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    if image.ndim != 3 or image.shape[2] < 3:
        raise ValueError(f"IMAGE must be a grayscale or colour picture, got shape {image.shape}")
    return image[..., :3], str(path)


def demo_boxes(image_shape, default: bool):
    """Named boxes: the astronaut's objects, or the same layout scaled to another image."""
    names = list(ASTRONAUT_BOXES)
    b = np.array(list(ASTRONAUT_BOXES.values()), dtype=np.float64)
    if default:
        return b, names
    h, w = image_shape[:2]
    b = b / 512.0 * np.array([w, h, w, h])
    return B.clip_boxes_to_image(b, (h, w)), [chr(ord("A") + i) for i in range(len(names))]
