"""The RoI benchmark entries run, check agreement with torchvision first, and restore torch's threads."""

from __future__ import annotations

import torch

from minivision.bench import run


def test_roi_bench_rows_and_threads():
    threads = torch.get_num_threads()
    lines = []
    rows = run(["roi_pool", "roi_align"], repeats=1, out=lines.append)
    assert [(r.op, r.workload.split()[0]) for r in rows] == [
        ("roi_pool", "fwd"),
        ("roi_pool", "fwd+bwd"),
        ("roi_align", "fwd"),
        ("roi_align", "fwd+bwd"),
    ]
    assert all(r.minivision_ms > 0 and r.reference_ms > 0 for r in rows)
    assert all("1 thread" in r.reference for r in rows)
    assert torch.get_num_threads() == threads
