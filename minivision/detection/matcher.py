"""Matching anchors to objects, and sampling a balanced training batch from them.

Training a region proposal network needs, for every anchor, a label -- object, background or
"don't care" -- and, for the objects, which ground-truth box to regress to:

* :class:`Matcher` labels every prediction (anchor or proposal) by its best IoU with the ground
  truth, with two thresholds and Faster R-CNN's rule that every object gets at least its
  best anchors (``torchvision.models.detection._utils.Matcher``);
* :class:`BalancedPositiveNegativeSampler` picks, per image, a fixed-size batch with at most a
  given fraction of positives (``torchvision``'s sampler of the same name), from a seeded
  random generator that gives the same choice on every backend.

Both are device-pure.
"""

from __future__ import annotations

import numbers
import random

from .._backend import device, is_array_api_obj, namespace_of
from .._validate import check_number

__all__ = ["Matcher", "BalancedPositiveNegativeSampler", "balanced_sample"]




# ----------------------------------------------------------------------------- matching


class Matcher:
    """Assign to each prediction the ground-truth box it matches best, or a negative code.

    Parameters
    ----------
    high_threshold : float
        A prediction whose best quality is ``>= high_threshold`` is matched to that GT
        (0.7 in the RPN, 0.5 in the Fast R-CNN head).
    low_threshold : float
        Best quality ``< low_threshold``: ``BELOW_LOW_THRESHOLD = -1`` (background);
        ``low <= q < high``: ``BETWEEN_THRESHOLDS = -2`` (ignored). Must be ``<= high_threshold``;
        equal thresholds leave no ignored band.
    allow_low_quality_matches : bool
        Faster R-CNN's rule, so that no object is left without an anchor: for each GT ``g``
        take its best quality ``q_g`` over all predictions; every prediction ``p`` with
        ``Q[g, p] == q_g`` (ties included) gets back its own best GT, whatever its quality.

    Notes
    -----
    The low-quality rule has two surprising consequences (both as in torchvision):

    * a prediction promoted because of GT ``g`` is assigned to *its* best GT, which may be
      another one (the one it overlaps more, though that overlap is below ``high``);
    * a GT that overlaps no prediction at all has ``q_g = 0``, and then every prediction with
      IoU 0 to it -- usually all of them -- is "promoted" to its best GT: everything becomes
      positive. (A GT outside the image, or of zero area, does this.)

    Mirrors ``torchvision.models.detection._utils.Matcher`` (0.29.1). Device-pure.
    """

    BELOW_LOW_THRESHOLD = -1
    BETWEEN_THRESHOLDS = -2

    def __init__(self, high_threshold, low_threshold, allow_low_quality_matches: bool = False):
        high = check_number("high_threshold", high_threshold)
        low = check_number("low_threshold", low_threshold)
        if low > high:
            raise ValueError(
                f"low_threshold must be <= high_threshold, got low {low} and high {high}"
            )
        self.high_threshold, self.low_threshold = high, low
        self.allow_low_quality_matches = bool(allow_low_quality_matches)

    def __repr__(self):
        return (
            f"Matcher(high_threshold={self.high_threshold}, low_threshold={self.low_threshold}, "
            f"allow_low_quality_matches={self.allow_low_quality_matches})"
        )

    def __call__(self, match_quality_matrix):
        """Match.

        Parameters
        ----------
        match_quality_matrix : float array of shape (M, N)
            Quality of each (ground truth, prediction) pair, usually ``box_iou(gt, anchors)``.

        Returns
        -------
        int64 array of shape (N,)
            The matched GT index in ``[0, M)``, or -1 (below ``low``) or -2 (between).
            Ties between GTs go to the lowest index. A NaN quality counts as the largest (the
            prediction is matched to the first GT with a NaN, since NaN is never below a
            threshold), as in torchvision.

        Raises
        ------
        ValueError
            If ``M == 0`` (no ground truth: callers label every anchor background instead) or
            ``N == 0``, with torchvision's messages.
        """
        xp = namespace_of(match_quality_matrix=match_quality_matrix)
        q = match_quality_matrix
        if q.ndim != 2:
            raise ValueError(f"match_quality_matrix must have shape (M, N), got {tuple(q.shape)}")
        if not xp.isdtype(q.dtype, "real floating"):
            raise TypeError(f"match_quality_matrix must be floating point, got {q.dtype}")
        if q.shape[0] == 0:
            raise ValueError(
                "No ground-truth boxes available for one of the images during training"
            )
        if q.shape[1] == 0:
            raise ValueError("No proposal boxes available for one of the images during training")

        nan = xp.isnan(q)
        any_nan = xp.any(nan, axis=0)  # (N,)
        # best GT per prediction: the first maximum, or the first NaN (torch's max(dim=0))
        first_nan = xp.argmax(xp.astype(nan, xp.int8), axis=0)
        best_gt = xp.where(any_nan, first_nan, xp.argmax(q, axis=0))
        best_gt = xp.astype(best_gt, xp.int64)
        best_val = xp.max(q, axis=0)  # NaN where the column holds a NaN
        best_val = xp.where(any_nan, xp.asarray(xp.nan, dtype=q.dtype, device=device(q)), best_val)

        below = best_val < self.low_threshold
        between = (best_val >= self.low_threshold) & (best_val < self.high_threshold)
        matches = xp.where(below, xp.asarray(-1, dtype=xp.int64, device=device(q)), best_gt)
        matches = xp.where(between, xp.asarray(-2, dtype=xp.int64, device=device(q)), matches)
        if self.allow_low_quality_matches:
            best_per_gt = xp.max(q, axis=1)  # (M,); NaN rows promote nothing
            promoted = xp.any(q == best_per_gt[:, None], axis=0)  # (N,)
            matches = xp.where(promoted, best_gt, matches)
        return matches


# ----------------------------------------------------------------------------- sampling


def balanced_sample(labels, priority, batch_size_per_image: int, positive_fraction: float):
    """Pick a balanced batch from one image's labels, in order of a given priority.

    Parameters
    ----------
    labels : array of shape (N,)
        ``>= 1`` positive, ``0`` negative, anything else (``-1``) ignored -- the RPN's labels or
        the matched class labels of the RoI head.
    priority : real array of shape (N,)
        Lower is chosen first; a random permutation gives a uniformly random batch. Equal
        priorities go to the lower index.
    batch_size_per_image : int
    positive_fraction : float in [0, 1]

    Returns
    -------
    pos, neg : bool arrays of shape (N,)
        ``num_pos = min(int(batch_size_per_image * positive_fraction), #positives)`` positives
        and ``num_neg = min(batch_size_per_image - num_pos, #negatives)`` negatives: too few
        positives are made up with negatives, too few negatives are *not* made up with positives.

    Notes
    -----
    The rule of torchvision's ``BalancedPositiveNegativeSampler``, with the random choice made
    explicit. Device-pure: the counts stay on the device as 0-d arrays, the choice is a sort by
    priority and a running count of each kind, and nothing depends on the data's size.
    """
    xp = namespace_of(labels=labels, priority=priority)
    if labels.ndim != 1 or tuple(priority.shape) != tuple(labels.shape):
        raise ValueError(
            f"labels and priority must have one shape (N,), got {tuple(labels.shape)} and "
            f"{tuple(priority.shape)}"
        )
    quota = _quota(batch_size_per_image, positive_fraction)
    dev = device(labels)
    pos = labels >= 1
    neg = labels == 0
    order = xp.argsort(priority, stable=True)  # (N,): visiting order
    inverse = xp.argsort(order)  # position of each element in the visiting order
    pos_sorted = xp.astype(xp.take(pos, order), xp.int64)
    neg_sorted = xp.astype(xp.take(neg, order), xp.int64)
    # how many positives / negatives come before each element, itself included
    pos_rank = xp.take(xp.cumulative_sum(pos_sorted), inverse)
    neg_rank = xp.take(xp.cumulative_sum(neg_sorted), inverse)
    n_pos = xp.sum(xp.astype(pos, xp.int64))
    n_neg = xp.sum(xp.astype(neg, xp.int64))
    num_pos = xp.minimum(n_pos, xp.asarray(quota, dtype=xp.int64, device=dev))
    num_neg = xp.minimum(
        n_neg, xp.asarray(batch_size_per_image, dtype=xp.int64, device=dev) - num_pos
    )
    return pos & (pos_rank <= num_pos), neg & (neg_rank <= num_neg)


def _quota(batch_size_per_image, positive_fraction) -> int:
    if (
        isinstance(batch_size_per_image, bool)
        or not isinstance(batch_size_per_image, numbers.Integral)
        or batch_size_per_image < 0
    ):
        raise ValueError(
            f"batch_size_per_image must be a non-negative integer, got {batch_size_per_image!r}"
        )
    if (
        isinstance(positive_fraction, bool)
        or not isinstance(positive_fraction, numbers.Real)
        or not 0 <= positive_fraction <= 1
    ):
        raise ValueError(f"positive_fraction must be a number in [0, 1], got {positive_fraction!r}")
    return int(batch_size_per_image * positive_fraction)  # floor, as torchvision: 255 * 0.25 -> 63


_MASK32 = 0xFFFFFFFF
_GOLDEN = 0x9E3779B9  # 2**32 / golden ratio, odd


def _mix32_int(h: int) -> int:
    """MurmurHash3's 32-bit finaliser on a Python int: a bijection of [0, 2**32)."""
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & _MASK32
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & _MASK32
    return h ^ (h >> 16)


def _mul32(xp, h, c: int):
    """``(h * c) mod 2**32`` for int64 ``h`` in [0, 2**32) without int64 overflow.

    ``c`` is split into 16-bit halves so every product stays below 2**48.
    """
    lo, hi = c & 0xFFFF, c >> 16
    return (h * lo + (((h * hi) & 0xFFFF) << 16)) & _MASK32


def _mix32(xp, h):
    """The same finaliser on an int64 array holding 32-bit values (no overflow anywhere)."""
    h = h ^ (h >> 16)
    h = _mul32(xp, h, 0x85EBCA6B)
    h = h ^ (h >> 13)
    h = _mul32(xp, h, 0xC2B2AE35)
    return h ^ (h >> 16)


class BalancedPositiveNegativeSampler:
    """Sample a fixed-size batch per image with at most a given fraction of positives.

    Parameters
    ----------
    batch_size_per_image : int
        Anchors (RPN: 256) or proposals (RoI head: 512) per image.
    positive_fraction : float in [0, 1]
        At most ``int(batch_size_per_image * positive_fraction)`` positives (0.5 and 0.25).
    seed : int, optional
        Seed of the sampler's own random generator; ``None`` draws one from Python's
        ``random``. The same seed gives the same sequence of batches on NumPy, CuPy, torch and
        every other backend.

    Notes
    -----
    The counting rule is torchvision's (see :func:`balanced_sample`). The random choice is not:
    torchvision draws ``torch.randperm`` from torch's global generator, which no other library
    can reproduce, while the Array API has no random numbers at all. Here each call draws, for
    image ``i`` and element ``j``, the priority ``mix(mix(j * 0x9E3779B9 + a) ^ b)`` where
    ``mix`` is MurmurHash3's 32-bit finaliser and ``(a, b)`` are derived from the seed, the call
    number and ``i`` -- integer arithmetic that every backend computes identically. ``mix`` and
    ``j -> j * 0x9E3779B9 + a (mod 2**32)`` are bijections, so the priorities of one image are
    distinct: a uniformly scrambled order, not a sample with ties. Each call advances the
    generator, so successive calls give different batches. Device-pure.
    """

    def __init__(self, batch_size_per_image: int, positive_fraction: float, seed=None):
        _quota(batch_size_per_image, positive_fraction)
        self.batch_size_per_image = int(batch_size_per_image)
        self.positive_fraction = float(positive_fraction)
        if seed is None:
            seed = random.getrandbits(64)
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer or None, got {seed!r}")
        self.seed = int(seed)
        self._calls = 0

    def __repr__(self):
        return (
            f"BalancedPositiveNegativeSampler(batch_size_per_image={self.batch_size_per_image}, "
            f"positive_fraction={self.positive_fraction}, seed={self.seed})"
        )

    def _stream(self, call: int, image: int) -> tuple[int, int]:
        s = self.seed
        words = [s & _MASK32, (s >> 32) & _MASK32, (s >> 64) & _MASK32, call & _MASK32, image]
        a = 0x243F6A88  # digits of pi: any fixed start
        for w in words:
            a = _mix32_int(a ^ _mix32_int((w + _GOLDEN) & _MASK32))
        return a, _mix32_int(a ^ 0x5BD1E995)

    def priorities(self, n: int, call: int, image: int, *, like):
        """The priority of each of ``n`` elements for a given call and image (int64, distinct)."""
        xp = namespace_of(like=like)
        a, b = self._stream(call, image)
        j = xp.arange(n, dtype=xp.int64, device=device(like))
        return _mix32(xp, _mix32(xp, (j * _GOLDEN + a) & _MASK32) ^ b)

    def __call__(self, matched_idxs):
        """Sample every image of a batch.

        Parameters
        ----------
        matched_idxs : list of arrays of shape (N_i,)
            Per image: ``>= 1`` positive, ``0`` negative, other values ignored.

        Returns
        -------
        pos_idx, neg_idx : lists of uint8 arrays of shape (N_i,)
            Masks of the chosen positives and negatives (torchvision's format).
        """
        if is_array_api_obj(matched_idxs) or not isinstance(matched_idxs, (list, tuple)):
            raise TypeError(
                "matched_idxs must be a list with one (N_i,) array per image, got "
                f"{type(matched_idxs).__name__}"
            )
        call = self._calls
        self._calls += 1
        pos_idx, neg_idx = [], []
        for i, labels in enumerate(matched_idxs):
            xp = namespace_of(**{f"matched_idxs[{i}]": labels})
            if labels.ndim != 1:
                raise ValueError(
                    f"matched_idxs[{i}] must have shape (N,), got {tuple(labels.shape)}"
                )
            priority = self.priorities(labels.shape[0], call, i, like=labels)
            pos, neg = balanced_sample(
                labels, priority, self.batch_size_per_image, self.positive_fraction
            )
            pos_idx.append(xp.astype(pos, xp.uint8))
            neg_idx.append(xp.astype(neg, xp.uint8))
        return pos_idx, neg_idx
