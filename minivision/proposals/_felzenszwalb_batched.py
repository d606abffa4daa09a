"""The batched merge of Felzenszwalb–Huttenlocher: the fast machinery beside the textbook loop.

:func:`merge_batched` returns exactly what
:func:`minivision.proposals.felzenszwalb_merge.merge_sequential` returns, with vectorised NumPy
steps over many edges at once (how, and why it is exact, in its docstring and in lesson 02);
:func:`segment_grid` runs it on an image's pixel grid. The union-find forest and the scans over
runs of equal values that the steps use are in :mod:`minivision.proposals._forest`. Host island
(DESIGN.md §2, kind 3).
"""

from __future__ import annotations

import numpy as np

from ._forest import (
    BIG,
    Forest,
    connected_components,
    count_before_or_at,
    exclusive_cumsum,
    find,
    run_segments,
)
from .felzenszwalb_merge import grid_edges, labels_by_first_appearance

__all__ = ["merge_batched", "segment_grid"]

# A run of at least this many equal weights is merged in one vectorised "level" step.
LEVEL_MIN = 64
# Number of undecided edges the batched merge looks at in each step, and how many windows'
# worth of the sorted stream it filters at once.
WINDOW = 2048
# Edges per lazily sorted group (see _sorted_groups).
_GROUP = 1 << 15


def _level_step(f, u, v, w):
    """Merge a run of edges that all have weight ``w`` in one go; False if it cannot.

    Within one weight level no edge order matters: a component that was still unmerged at the
    level start with ``w >= tau`` rejects every edge of the level (and, the sweep being sorted,
    every later edge), while a component with ``w < tau`` accepts them; a component formed
    inside the level has ``Int = w`` and keeps accepting weight-``w`` edges as long as
    ``float32(w + k/|C|) > w``. So the level's merges are the connected components of its
    edges between accepting components. That last condition can fail (huge components, tiny
    k); then nothing is changed and the caller falls back to the ordered batches.
    """
    a = find(f.parent, u)
    b = find(f.parent, v)
    live = (a != b) & ~f.closed[a] & ~f.closed[b]
    a, b = a[live], b[live]
    if a.shape[0] == 0:
        return True
    open_a, open_b = w < f.tau[a], w < f.tau[b]
    both = open_a & open_b
    ea, eb = a[both], b[both]
    nodes = np.concatenate([ea, eb])
    if nodes.shape[0] * 8 > f.parent.shape[0]:  # (m,) the components that merge, sorted
        mark = np.zeros(f.parent.shape[0], dtype=bool)
        mark[nodes] = True
        nodes = np.flatnonzero(mark)
    else:
        nodes = np.sort(nodes)
        nodes = nodes[np.diff(nodes, prepend=-1) != 0]
    m = nodes.shape[0]
    if m:
        f.first[nodes] = np.arange(m)  # scratch: node -> local id 0..m-1
        lab = connected_components(f.first[ea], f.first[eb], m)
        f.first[nodes] = BIG
        total = np.zeros(m, dtype=np.intp)
        np.add.at(total, lab, f.size[nodes])
        reps = np.flatnonzero(lab == np.arange(m))
        tau = f.threshold(w, total[reps])
        if not np.all(tau > w):
            return False
    f.closed[a[~open_a]] = True
    f.closed[b[~open_b]] = True
    if m:  # root each component at its largest member (keeps the trees shallow)
        largest = np.zeros(m, dtype=np.intp)
        np.maximum.at(largest, lab, f.size[nodes] * m + np.arange(m))
        root = nodes[largest % m]  # (m,) indexed by component label
        f.parent[nodes] = root[lab]
        f.size[root[reps]] = total[reps]
        f.tau[root[reps]] = tau
    return True


class _Window:
    """A queue of sorted, undecided edges and a window over its head, decided step by step.

    Edges are ``feed``-ed in sorted order (as the roots of their two nodes, and their
    weights); ``run`` tops the window up to ``size`` edges from the queue and calls ``_step``,
    which decides what it can and returns the edges still undecided, in order.
    """

    def __init__(self, parent, size):
        self.parent, self.size = parent, size
        empty = np.empty(0, dtype=np.intp)
        self.ru = self.rv = self.qu = self.qv = empty  # window / queue: roots of both ends
        self.pw = self.qw = np.empty(0, dtype=np.float64)  # and weights

    def feed(self, u, v, w):
        """Queue edges that come after everything fed so far; decide while the window is full."""
        self.qu = np.concatenate([self.qu, u])
        self.qv = np.concatenate([self.qv, v])
        self.qw = np.concatenate([self.qw, w])
        self.run(drain=False)

    def run(self, drain=True):
        """Take steps until every edge is decided (drain) or the window cannot be filled."""
        parent = self.parent
        while True:
            take = min(self.size - self.ru.shape[0], self.qu.shape[0])
            if take > 0:
                self.ru = np.concatenate([self.ru, find(parent, self.qu[:take])])
                self.rv = np.concatenate([self.rv, find(parent, self.qv[:take])])
                self.pw = np.concatenate([self.pw, self.qw[:take]])
                self.qu, self.qv, self.qw = self.qu[take:], self.qv[take:], self.qw[take:]
            if self.ru.shape[0] == 0 or (not drain and self.ru.shape[0] < self.size):
                return
            self.ru, self.rv, self.pw = self._step(self.ru, self.rv, self.pw)


class _MergeWindow(_Window):
    """The merge pass over sorted edges, many decisions per vectorised step, exactly.

    Each step looks at the window's undecided edges and decides those whose outcome
    cannot depend on an earlier undecided edge:

    * an edge whose two roots are equal is internal, one touching a closed component is
      rejected;
    * an edge that is the earliest undecided edge of *both* its components sees exactly the
      state the sequential loop would see;
    * a component whose earliest undecided edge it rejects (``w >= tau``) is closed for good,
      because ``tau`` only changes on a merge and all later weights are larger;
    * chains: if component A's earliest edge is also its partner's earliest, A's following
      edges can be decided in the same step as long as each partner's edges up to that point
      all go to A. Along such a chain only A's state evolves, so a scan decides it: A absorbs
      the partners that accept, in order, until the first one A rejects; from then on A is
      closed.

    Decisions about disjoint components commute, so the result is the sequential one.
    """

    def __init__(self, forest, size):
        super().__init__(forest.parent, size)
        self.f = forest

    def _step(self, ru, rv, pw):
        """Decide what can be decided among the window's edges; return the undecided ones."""
        f = self.f
        parent, size, tau, closed = f.parent, f.size, f.tau, f.closed
        first, foreign, partner, head = f.first, f.foreign, f.partner, f.head
        live = (ru != rv) & ~closed[ru] & ~closed[rv]
        ru, rv, pw = ru[live], rv[live], pw[live]
        n = ru.shape[0]
        if n == 0:
            return ru, rv, pw
        pos = np.arange(n, dtype=np.intp)
        # earliest undecided edge of every component
        np.minimum.at(first, ru, pos)
        np.minimum.at(first, rv, pos)
        fu, fv = first[ru] == pos, first[rv] == pos
        first[ru] = BIG
        first[rv] = BIG
        closed[ru[fu & (pw >= tau[ru])]] = True
        closed[rv[fv & (pw >= tau[rv])]] = True
        # partner of that edge, and each component's earliest edge to anyone else
        partner[ru[fu]] = rv[fu]
        partner[rv[fv]] = ru[fv]
        other_u, other_v = rv != partner[ru], ru != partner[rv]
        np.minimum.at(foreign, ru[other_u], pos[other_u])
        np.minimum.at(foreign, rv[other_v], pos[other_v])
        # chain heads: one side of each edge that is earliest for both of its components
        mutual = fu & fv
        a, b = ru[mutual], rv[mutual]
        ga, gb = foreign[a], foreign[b]
        heads = np.where((ga < gb) | ((ga == gb) & (a < b)), a, b)
        head[heads] = np.arange(1, heads.shape[0] + 1)
        # (head id, edge position, partner) for every edge end at a head, by head then position
        ends = np.stack([head[ru], head[rv]], axis=1).ravel()  # (2n,) ends in position order
        sel = np.flatnonzero(ends)
        hid = ends[sel]
        e = sel >> 1
        at_v = (sel & 1).astype(bool)
        part = np.where(at_v, ru[e], rv[e])
        part_first = np.where(at_v, fu[e], fv[e])  # the edge is the partner's earliest
        order = np.argsort(hid.astype(np.uint16), kind="stable")  # window < 65536: radix sort
        hid, e, part, part_first = hid[order], e[order], part[order], part_first[order]
        own = heads[hid - 1]
        m = own.shape[0]
        sidx, seglen = run_segments(hid)
        # a chain stops at an edge whose partner's earliest edge goes elsewhere, or at the
        # first edge any partner so far has to a third component
        seg = np.repeat(np.arange(sidx.shape[0]), seglen)
        offset = (sidx.shape[0] - seg) * (n + 1)  # keeps each segment's running min separate
        limit = np.minimum.accumulate(np.minimum(foreign[part], n) + offset) - offset
        ok = (partner[part] == own) & (e < limit)
        in_chain = count_before_or_at(~ok, sidx, seglen) == 0
        w_e = pw[e]
        fresh = in_chain & part_first  # first edge to this partner in the chain
        accepts = w_e < tau[part]
        closed[part[fresh & ~accepts]] = True
        cand = fresh & accepts
        # the head's threshold before each candidate, if it absorbed every earlier candidate
        absorbed = np.where(cand, size[part], 0)
        grown = size[own] + exclusive_cumsum(absorbed, sidx, seglen)
        prev = np.empty(m, dtype=np.intp)
        prev[0] = -1
        np.maximum.accumulate(np.where(cand, np.arange(m), -1)[:-1], out=prev[1:])
        has_prev = prev >= np.repeat(sidx, seglen)
        tau_head = np.where(has_prev, f.threshold(w_e[prev], grown), tau[own])
        fail = cand & (w_e >= tau_head)
        merged = cand & (count_before_or_at(fail, sidx, seglen) == 0)
        fail_heads = own[fail]
        head[heads] = 0
        partner[ru[fu]] = -1
        partner[rv[fv]] = -1
        foreign[ru] = BIG
        foreign[rv] = BIG
        mo = own[merged]
        if mo.shape[0]:
            # one merged component per head: rooted at its largest member (keeps trees shallow)
            mp, mw = part[merged], w_e[merged]
            starts, lengths = run_segments(mo)
            heads_m, psize = mo[starts], size[mp]
            key = psize * mo.shape[0] + np.arange(mo.shape[0])
            largest = np.maximum.reduceat(key, starts) % mo.shape[0]
            root = np.where(size[heads_m] >= psize[largest], heads_m, mp[largest])
            total = size[heads_m] + np.add.reduceat(psize, starts)
            parent[mp] = np.repeat(root, lengths)
            parent[heads_m] = root
            size[root] = total
            tau[root] = f.threshold(mw[starts + lengths - 1], total)  # Int = last merge
        closed[parent[fail_heads]] = True
        keep = np.ones(n, dtype=bool)
        keep[e[in_chain]] = False
        return parent[ru[keep]], parent[rv[keep]], pw[keep]


def _sorted_groups(w, group):
    """Edge indices in (weight, index) order, as consecutive groups of about ``group`` edges.

    Only the order *between* groups is settled here, by one radix pass over the top 16 bits
    of the (non-negative) float64 weights; each group is then sorted when it is reached, after
    the edges that have become internal in the meantime are dropped -- most of them, so most
    edges are never sorted at all. Weights with a sign bit (negative, -0.0, NaN) get one
    full stable sort instead.
    """
    n_edges = w.shape[0]
    if n_edges == 0:
        return
    bits = w.view(np.uint64)
    if np.any(bits >> np.uint64(63)):
        yield np.argsort(w, kind="stable")
        return
    key = (bits >> np.uint64(48)).astype(np.uint16)  # monotone in w for w >= +0.0
    order = np.argsort(key, kind="stable")  # radix sort: ties (same key) keep index order
    ends = np.append(np.flatnonzero(np.diff(key[order])) + 1, n_edges)  # end of each key run
    stops = np.union1d(ends[np.searchsorted(ends, np.arange(group, n_edges, group))], n_edges)
    start = 0
    for stop in stops.tolist():
        yield order[start:stop]
        start = stop


def _runs(w):
    """(start, stop, is_level) stretches of sorted weights: tie runs >= LEVEL_MIN, and the rest."""
    n = w.shape[0]
    brk = np.flatnonzero(w[1:] != w[:-1]) + 1
    starts = np.concatenate([[0], brk])
    stops = np.append(brk, n)
    big = (stops - starts) >= LEVEL_MIN
    out, done = [], 0
    for a, b in zip(starts[big].tolist(), stops[big].tolist()):
        if a > done:
            out.append((done, a, False))
        out.append((a, b, True))
        done = b
    if done < n:
        out.append((done, n, False))
    return out


def _merge_pass(u, v, w, num_nodes, k, window):
    """The threshold merge over all edges in (weight, index) order; returns the forest."""
    f = Forest(num_nodes, k)
    batches = _MergeWindow(f, window)
    for idx in _sorted_groups(w, _GROUP):
        a, b = find(f.parent, u[idx]), find(f.parent, v[idx])
        live = (a != b) & ~f.closed[a] & ~f.closed[b]  # internal or closed for good: skip
        idx, a, b = idx[live], a[live], b[live]
        order = np.argsort(w[idx], kind="stable")  # idx ascending, so ties stay in index order
        idx, a, b = idx[order], a[order], b[order]
        ww = w[idx]
        for start, stop, level in _runs(ww):
            sl = slice(start, stop)
            if level:
                batches.run()  # a level step needs every earlier edge decided
                if _level_step(f, a[sl], b[sl], ww[start]):
                    continue
            batches.feed(a[sl], b[sl], ww[sl])
    batches.run()
    return f


class _SmallWindow(_Window):
    """The min_size pass over sorted edges, many decisions per step, exactly.

    An edge merges iff its two components differ and one has fewer than ``min_size`` pixels.
    A component that has ``min_size`` pixels keeps having them, so only an edge's *small*
    endpoints matter: the edge is decided once it is the earliest undecided edge of each of
    them. A small component is attached under a large one, two small ones under the smaller
    index; merges into one large component in the same step commute.
    """

    def __init__(self, parent, sizes, min_size, scratch, size):
        super().__init__(parent, size)
        self.sizes, self.min_size, self.first = sizes, min_size, scratch

    def _step(self, ru, rv, pw):
        sizes, parent, first = self.sizes, self.parent, self.first
        su, sv = sizes[ru] < self.min_size, sizes[rv] < self.min_size
        live = (ru != rv) & (su | sv)
        ru, rv, pw, su, sv = ru[live], rv[live], pw[live], su[live], sv[live]
        n = ru.shape[0]
        if n == 0:
            return ru, rv, pw
        pos = np.arange(n, dtype=np.intp)
        np.minimum.at(first, ru[su], pos[su])
        np.minimum.at(first, rv[sv], pos[sv])
        ready = (~su | (first[ru] == pos)) & (~sv | (first[rv] == pos))
        first[ru] = BIG
        first[rv] = BIG
        a, b, sa, sb = ru[ready], rv[ready], su[ready], sv[ready]
        both = sa & sb
        src = np.where(both, np.maximum(a, b), np.where(sa, a, b))
        dst = np.where(both, np.minimum(a, b), np.where(sa, b, a))
        np.add.at(sizes, dst, sizes[src])
        parent[src] = dst
        keep = ~ready
        return parent[ru[keep]], parent[rv[keep]], pw[keep]


def _min_size_pass(u, v, w, f, min_size, window):
    """Merge every edge (in order) whose components include one below ``min_size`` pixels.

    Only edges that can still merge when the pass starts (two different components, one of
    them small) are visited, sorted lazily like in the merge pass. Returns each node's root.
    """
    root = find(f.parent, np.arange(f.parent.shape[0], dtype=np.intp))
    if min_size <= 1 or u.shape[0] == 0:
        return root
    sizes = f.size
    ru, rv = root[u], root[v]
    cand = np.flatnonzero((ru != rv) & ((sizes[ru] < min_size) | (sizes[rv] < min_size)))
    ru, rv, wc = ru[cand], rv[cand], w[cand]  # in edge-index order
    parent = np.arange(root.shape[0], dtype=np.intp)  # union-find over the merge pass's roots
    batches = _SmallWindow(parent, sizes, min_size, f.first, window)
    for idx in _sorted_groups(wc, _GROUP):
        a, b = find(parent, ru[idx]), find(parent, rv[idx])
        live = (a != b) & ((sizes[a] < min_size) | (sizes[b] < min_size))
        idx, a, b = idx[live], a[live], b[live]
        order = np.argsort(wc[idx], kind="stable")  # idx ascending: ties stay in index order
        batches.feed(a[order], b[order], wc[idx[order]])
    batches.run()
    return find(parent, root)


def merge_batched(
    u, v, weights, num_nodes: int, k: float, min_size: int, *, window: int = WINDOW
) -> np.ndarray:
    """The same result as :func:`merge_sequential`, with vectorised NumPy steps.

    Parameters and return value as :func:`merge_sequential`; ``window`` (at most 65535) is
    the number of undecided edges examined per step, a speed knob that does not change the
    result.

    Notes
    -----
    Edges are sorted lazily, a group at a time, and the ones that are already internal when
    their group comes up are dropped unsorted. Runs of equal weights (flat image regions give
    thousands of weight-0 edges) are merged in one step each (``_level_step``); everything
    else goes through ``_Window``, which decides in each step every edge whose
    outcome no earlier undecided edge can change. The min_size pass is batched the same way.
    Host island.
    """
    if not 1 <= window < 65536:
        raise ValueError(f"window must be in [1, 65535], got {window}")
    w = np.asarray(weights, dtype=np.float64).ravel()
    u = np.asarray(u, dtype=np.intp).ravel()
    v = np.asarray(v, dtype=np.intp).ravel()
    forest = _merge_pass(u, v, w, num_nodes, float(k), window)
    return labels_by_first_appearance(_min_size_pass(u, v, w, forest, min_size, window))


def segment_grid(weights: np.ndarray, height: int, width: int, scale: float, min_size: int):
    """Labels ``(height, width)`` int64 from the grid's edge weights (skimage order), k = scale/255."""
    u, v = grid_edges(height, width)
    labels = merge_batched(u, v, weights, height * width, float(scale) / 255.0, min_size)
    return labels.reshape(height, width)
