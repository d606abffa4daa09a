"""Vectorised COCO RLE codecs over many masks at once (host island, NumPy).

The array machinery behind :mod:`minivision.data.rle` and the mask evaluation of
:mod:`minivision.eval.coco`. Many run-length encodings are held as one CSR table: ``counts``
(int64, the run lengths, zeros first) with mask ``i`` at ``counts[offsets[i]:offsets[i + 1]]``.
Each function is a transcription of one routine of pycocotools' ``maskApi.c`` (named in its
docstring) with the per-pixel and per-run C loops replaced by array operations over all masks.
Polygons and COCO's segmentation formats are in ``rle_poly.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._backend import run_starts


@dataclass
class Intervals:
    """Many masks as foreground intervals ``[start, end)`` of the column-major pixel index.

    Mask ``i`` is ``starts[offsets[i]:offsets[i + 1]]`` / ``ends[...]``, of size ``h[i]`` x ``w[i]``.
    """

    starts: np.ndarray
    ends: np.ndarray
    offsets: np.ndarray
    h: np.ndarray
    w: np.ndarray

    @classmethod
    def from_counts(cls, counts, offsets, h, w):
        return cls(*counts_to_intervals(counts, offsets), np.asarray(h), np.asarray(w))


def csr(lengths):
    """Offsets (n + 1,) of consecutive blocks with the given lengths."""
    off = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=off[1:])
    return off


def ragged_arange(lengths):
    """``concatenate([arange(n) for n in lengths])`` without the loop."""
    lengths = np.asarray(lengths, dtype=np.int64)
    off = csr(lengths)
    return np.arange(off[-1]) - np.repeat(off[:-1], lengths)


def segment_ids(offsets):
    return np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))


# --- the compressed string (rleToString / rleFrString) -------------------------------------


def counts_to_strings(counts, offsets):
    """``rleToString`` for every mask: LEB128-like, 5 bits a char, chars 48..111.

    Each count from the fourth on is stored as the difference to the count two before
    (``x = cnts[i] - cnts[i - 2]`` for ``i > 2``), then split into 5-bit groups, low first;
    bit 5 (0x20) says "more follows", and the last group's bit 4 is the sign.
    """
    n = len(offsets) - 1
    x = counts.astype(np.int64)
    pos = ragged_arange(np.diff(offsets))
    lag = pos > 2
    x[lag] -= counts[np.flatnonzero(lag) - 2]
    # Number of 5-bit groups: stop once the rest is 0 (sign bit clear) or -1 (sign bit set).
    nchar = np.ones(len(x), dtype=np.int64)
    rest = x >> 5
    last = x & 0x1F
    more = np.where(last & 0x10, rest != -1, rest != 0)
    while more.any():
        nchar += more
        last = np.where(more, rest & 0x1F, last)
        rest = np.where(more, rest >> 5, rest)
        more &= np.where(last & 0x10, rest != -1, rest != 0)
    char_off = csr(nchar)
    k = ragged_arange(nchar)
    owner = np.repeat(np.arange(len(x)), nchar)
    c = (x[owner] >> (5 * k)) & 0x1F
    c |= np.where(k < nchar[owner] - 1, 0x20, 0)
    buf = (c + 48).astype(np.uint8).tobytes()
    ends = char_off[offsets]
    return [buf[ends[i]:ends[i + 1]] for i in range(n)]


def strings_to_counts(strings):
    """``rleFrString`` for many strings (bytes or str) -> (counts, offsets)."""
    raw = [s if isinstance(s, bytes) else s.encode() if isinstance(s, str) else bytes(s) for s in strings]
    lens = np.fromiter(map(len, raw), dtype=np.int64, count=len(raw))
    str_off = csr(lens)
    b = np.frombuffer(b"".join(raw), dtype=np.uint8) - np.uint8(48)  # '0'..'o' -> 0..63
    bad = b > 63
    if bad.any():
        i = int(np.searchsorted(str_off, int(np.flatnonzero(bad)[0]), "right") - 1)
        raise ValueError(f"RLE string {i} has a character outside '0'..'o'")
    end = b < 32  # bit 0x20 clear: the last char of a value
    full = lens > 0
    if full.any() and not end[str_off[1:][full] - 1].all():
        i = int(np.flatnonzero(full)[~end[str_off[1:][full] - 1]][0])
        raise ValueError(f"RLE string {i} ends in the middle of a count")
    ends = np.flatnonzero(end)
    v_start = np.empty(len(ends), dtype=ends.dtype)  # first char of each value
    v_start[:1] = 0
    v_start[1:] = ends[:-1] + 1
    # Value = sum of its 5-bit groups, low first: one gather per group position (<= 7).
    x = (b[v_start] & 0x1F).astype(np.int64)
    nchar = np.ones(len(ends), dtype=np.int64)
    live = np.flatnonzero(ends > v_start)
    j = 1
    while len(live):
        x[live] |= (b[v_start[live] + j] & 0x1F).astype(np.int64) << (5 * j)
        nchar[live] += 1
        j += 1
        live = live[ends[live] >= v_start[live] + j]
    x -= (b[ends] >= 16).astype(np.int64) << (5 * nchar)  # the last group's bit 4: negative
    per = np.diff(np.searchsorted(ends, str_off))  # values per string
    offsets = csr(per)
    # Undo the lag-2 differences, counts[m] = x[m] + counts[m - 2] for m > 2: a running sum
    # with stride 2 over the whole array, minus its value where each string's chain starts
    # (index 0 stands alone; the odd chain starts at 1, the even one at 2).
    cs = np.zeros(len(x) + 1, dtype=np.int64)  # cs[i + 1]: stride-2 running sum up to i
    np.cumsum(x[0::2], out=cs[1::2])
    np.cumsum(x[1::2], out=cs[2::2])
    first = np.repeat(offsets[:-1], per)
    before = first + 1  # the element just before the chain, in the same stride class, + 1
    before -= (np.arange(len(x)) - first) & 1
    out = cs[1:]
    out -= cs[before]
    heads = offsets[:-1][per > 0]
    out[heads] = x[heads]
    out &= 0xFFFFFFFF
    return out, offsets


# --- masks and runs (rleEncode, rleArea, rleToBbox) ----------------------------------------


def encode_flat(flat):
    """``rleEncode``: (N, L) uint8 masks, each flattened column-major -> (counts, offsets).

    A run ends wherever the *byte value* changes (values other than 0/1 make extra runs, as in
    maskApi.c); the first run counts zeros and may be empty.
    """
    N, L = flat.shape
    change = np.zeros((N, L + 1), dtype=bool)
    change[:, 0] = flat[:, 0] != 0 if L else False
    if L > 1:
        change[:, 1:L] = flat[:, 1:] != flat[:, :-1]
    change[:, L] = True
    # Boundaries: index 0 only when the mask starts non-zero (giving an empty first run).
    n_idx, pos = np.nonzero(change)
    starts = np.zeros(N, dtype=np.int64)
    per = np.bincount(n_idx, minlength=N)
    off = csr(per)
    prev = np.empty(len(pos), dtype=np.int64)
    prev[1:] = pos[:-1]
    prev[off[:-1][per > 0]] = starts[per > 0]
    return (pos - prev).astype(np.int64), off


def area(counts, offsets):
    """``rleArea``: sum of the odd-indexed runs of each mask."""
    odd = (ragged_arange(np.diff(offsets)) % 2 == 1).astype(np.int64)
    c = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts * odd, out=c[1:])
    return c[offsets[1:]] - c[offsets[:-1]]


def counts_to_intervals(counts, offsets):
    """Foreground intervals ``[start, end)`` of each mask (zero-length runs dropped)."""
    first = np.repeat(offsets[:-1], np.diff(offsets))  # index of each run's mask start
    c = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=c[1:])
    fg = ((np.arange(len(counts)) - first) & 1).astype(bool)  # odd runs are foreground
    fg &= counts > 0
    idx = np.flatnonzero(fg)
    ends = c[idx + 1] - c[first[idx]]  # end of the run, within its mask
    starts = ends - counts[idx]
    n_before = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(fg, out=n_before[1:])
    return starts, ends, n_before[offsets]


def counts_to_bbox(counts, offsets, h, w):
    """``rleToBbox`` operation for operation (unsigned 32-bit arithmetic included)."""
    n = len(offsets) - 1
    m = np.diff(offsets)
    m_even = (m // 2) * 2
    pos = ragged_arange(m)
    c = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=c[1:])
    owner = segment_ids(offsets)
    start = c[:-1] - c[offsets[:-1]][owner]
    end = start + counts  # cc after the run
    use = (pos % 2 == 1) & (counts > 0) & (pos < m_even[owner])
    hh = h[owner].astype(np.int64)
    ys, xs = start % hh, start // hh
    ye, xe = (end - 1) % hh, (end - 1) // hh
    cross = xs < xe
    o = owner[use]
    x_min = np.asarray(w, dtype=np.int64).copy()
    np.minimum.at(x_min, o, xs[use])
    x_max = np.zeros(n, dtype=np.int64)
    np.maximum.at(x_max, o, xe[use])
    y_min = np.asarray(h, dtype=np.int64).copy()
    np.minimum.at(y_min, o, np.where(cross, 0, ys)[use])
    y_max = np.zeros(n, dtype=np.int64)
    np.maximum.at(y_max, o, np.where(cross, hh - 1, ye)[use])
    bb = np.stack(
        [x_min, y_min, (x_max - x_min + 1) % (1 << 32), (y_max - y_min + 1) % (1 << 32)], axis=1
    ).astype(np.float64)
    bb[m_even == 0] = 0.0
    return bb


def intervals_to_bbox(starts, ends, offsets, h, w):
    """Pixel bounding box [x, y, w, h] of each mask from its intervals (0s for an empty mask)."""
    n = len(offsets) - 1
    owner = segment_ids(offsets)
    hh = np.asarray(h, dtype=np.int64)[owner]
    x0, x1 = starts // hh, (ends - 1) // hh
    y0 = np.where(x0 < x1, 0, starts % hh)
    y1 = np.where(x0 < x1, hh - 1, (ends - 1) % hh)
    out = np.zeros((n, 4))
    full = offsets[1:] > offsets[:-1]
    if full.any():
        first = offsets[:-1][full]
        xmin = np.minimum.reduceat(x0, first)
        xmax = np.maximum.reduceat(x1, first)
        ymin = np.minimum.reduceat(y0, first)
        ymax = np.maximum.reduceat(y1, first)
        out[full] = np.stack([xmin, ymin, xmax - xmin + 1, ymax - ymin + 1], axis=1)
    return out


def intervals_to_counts(starts, ends, offsets, hw):
    """Canonical RLE counts (zeros first; no empty run but the first) from sorted intervals."""
    n = len(offsets) - 1
    per = np.diff(offsets)
    hw = np.broadcast_to(np.asarray(hw, dtype=np.int64), (n,))
    last_end = np.zeros(n, dtype=np.int64)
    last_end[per > 0] = ends[offsets[1:][per > 0] - 1]
    # Runs per mask: [s0, e0-s0, s1-e0, ..., hw - e_last]; the last only if not empty.
    tail = (per == 0) | (last_end < hw)
    nrun = 2 * per + tail
    off = csr(nrun)
    counts = np.empty(off[-1], dtype=np.int64)
    owner = segment_ids(offsets)
    k = ragged_arange(per)
    prev_end = np.zeros(len(ends), dtype=np.int64)
    prev_end[1:] = ends[:-1]
    prev_end[k == 0] = 0
    counts[off[:-1][owner] + 2 * k] = starts - prev_end
    counts[off[:-1][owner] + 2 * k + 1] = ends - starts
    counts[off[1:][tail] - 1] = (hw - last_end)[tail]
    return counts, off


def union_intervals(starts, ends, group, n_groups, need=None):
    """Per group, the pixels covered by at least ``need[g]`` intervals (default 1), as intervals.

    ``need = number of masks`` gives the intersection. Intervals within one mask never overlap.
    """
    pos = np.concatenate([starts, ends])
    delta = np.concatenate([np.ones(len(starts), np.int64), -np.ones(len(ends), np.int64)])
    g = np.concatenate([group, group])
    order = np.lexsort((pos, g))
    pos, delta, g = pos[order], delta[order], g[order]
    # All events at one pixel of one group act together; every group's events sum to 0, so a
    # running sum over all groups is each group's own coverage.
    first, _ = run_starts(g * (int(pos.max(initial=0)) + 1) + pos)
    cov = np.cumsum(np.add.reduceat(delta, first) if len(first) else delta)
    upos, ug = pos[first], g[first]
    gstart, _ = run_starts(ug)
    thr = np.ones(n_groups, dtype=np.int64) if need is None else np.asarray(need, dtype=np.int64)
    inside = cov >= thr[ug]
    was = np.zeros(len(inside), dtype=bool)
    was[1:] = inside[:-1]
    was[gstart] = False
    opens = inside & ~was
    closes = ~inside & was
    s_out, e_out = upos[opens], upos[closes]
    grp = ug[opens]
    return s_out, e_out, csr(np.bincount(grp, minlength=n_groups))
