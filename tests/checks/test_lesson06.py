"""`minivision check 06`: stubs fail cleanly, a correct solution passes, planted mistakes are named.

Each planted mistake is written here the way a learner would write it, by editing the
independent solution in tests/solutions/ (not the battery's own wrong versions), and must be
recognised -- and only it.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from lesson_checks import assert_cli_exit_code, load_solution, replaced

from minivision.checks import check_file, check_module

ROOT = Path(__file__).resolve().parents[2]
STUBS = ROOT / "lessons" / "06_anchors.py"
SOLUTION = Path(__file__).parents[1] / "solutions" / "lesson06_solution.py"
CLIP = math.log(1000.0 / 16)


SOL = load_solution("06")


def _with(**overrides):
    return replaced(SOL, **overrides)


def test_stubs_fail_cleanly():
    report = check_file("06", STUBS)
    assert not report.ok
    assert {r.status for r in report.results} == {"stub"}
    text = report.text()
    assert "not implemented yet" in text and "Traceback" not in text
    assert "0 of 7 functions pass" in text


def test_reference_solution_passes():
    report = check_file("06", SOLUTION)
    assert report.ok, report.text()
    assert "7 of 7 functions pass" in report.text()


# ----------------------------------------------------------------------------- anchors


def cells_swapped(sizes, aspect_ratios):
    """Reads r as width / height."""
    rows = []
    for r in aspect_ratios:
        for s in sizes:
            w, h = s * math.sqrt(r), s / math.sqrt(r)
            rows.append([-w / 2, -h / 2, w / 2, h / 2])
    return np.round(np.array(rows))


def cells_sizes_outer(sizes, aspect_ratios):
    rows = []
    for s in sizes:
        for r in aspect_ratios:
            h, w = s * math.sqrt(r), s / math.sqrt(r)
            rows.append([-w / 2, -h / 2, w / 2, h / 2])
    return np.round(np.array(rows))


def cells_python_round_half_up(sizes, aspect_ratios):
    rows = []
    for r in aspect_ratios:
        for s in sizes:
            h, w = s * math.sqrt(r), s / math.sqrt(r)
            rows.append([math.floor(v + 0.5) for v in (-w / 2, -h / 2, w / 2, h / 2)])
    return np.array(rows, dtype=float)


def cells_unrounded(sizes, aspect_ratios):
    r = np.sqrt(np.array(aspect_ratios))[:, None]
    s = np.array(sizes, dtype=float)[None, :]
    w, h = (s / r).ravel(), (s * r).ravel()
    return np.stack([-w, -h, w, h], 1) / 2


def cells_full_size(sizes, aspect_ratios):
    return np.round(cells_unrounded(sizes, aspect_ratios) * 2)  # [-w, -h, w, h]


def grid_centred(sizes, aspect_ratios, image_size, grid_size):
    """d2l's layout: anchors at cell centres."""
    sh, sw = image_size[0] // grid_size[0], image_size[1] // grid_size[1]
    return (
        SOL.grid_anchors(sizes, aspect_ratios, image_size, grid_size)
        + np.array([sw, sh, sw, sh]) / 2
    )


def grid_true_division(sizes, aspect_ratios, image_size, grid_size):
    cells = SOL.cell_anchors(sizes, aspect_ratios)
    sh, sw = image_size[0] / grid_size[0], image_size[1] / grid_size[1]
    ys, xs = np.mgrid[0 : grid_size[0], 0 : grid_size[1]]
    shifts = np.stack([xs.ravel() * sw, ys.ravel() * sh] * 2, axis=1)
    return (shifts[:, None] + cells[None]).reshape(-1, 4)


def grid_anchor_major(sizes, aspect_ratios, image_size, grid_size):
    a = len(sizes) * len(aspect_ratios)
    out = SOL.grid_anchors(sizes, aspect_ratios, image_size, grid_size)
    return out.reshape(-1, a, 4).transpose(1, 0, 2).reshape(-1, 4)


def grid_column_major(sizes, aspect_ratios, image_size, grid_size):
    cells = SOL.cell_anchors(sizes, aspect_ratios)
    sh, sw = image_size[0] // grid_size[0], image_size[1] // grid_size[1]
    out = [
        cells + [j * sw, i * sh, j * sw, i * sh]
        for j in range(grid_size[1])
        for i in range(grid_size[0])
    ]
    return np.concatenate(out)


def grid_strides_swapped(sizes, aspect_ratios, image_size, grid_size):
    cells = SOL.cell_anchors(sizes, aspect_ratios)
    sh, sw = image_size[1] // grid_size[1], image_size[0] // grid_size[0]
    out = [
        cells + [j * sw, i * sh, j * sw, i * sh]
        for i in range(grid_size[0])
        for j in range(grid_size[1])
    ]
    return np.concatenate(out)


# ----------------------------------------------------------------------------- coding


def _c(b):
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    return b[:, 0] + w / 2, b[:, 1] + h / 2, w, h


def encode_inverted_log(reference_boxes, proposals, weights):
    out = SOL.encode_boxes(reference_boxes, proposals, weights)
    out[:, 2:] *= -1  # log(w_prop / w_ref)
    return out


def encode_by_target_size(reference_boxes, proposals, weights):
    px, py, pw, ph = _c(proposals)
    gx, gy, gw, gh = _c(reference_boxes)
    return np.stack([weights[0] * (gx - px) / gw, weights[1] * (gy - py) / gh,
                     weights[2] * np.log(gw / pw), weights[3] * np.log(gh / ph)], 1)  # fmt: skip


def encode_unweighted(reference_boxes, proposals, weights):
    return SOL.encode_boxes(reference_boxes, proposals, (1, 1, 1, 1))


def encode_divided(reference_boxes, proposals, weights):
    return SOL.encode_boxes(reference_boxes, proposals, (1, 1, 1, 1)) / np.asarray(weights)


def encode_corners(reference_boxes, proposals, weights):
    out = SOL.encode_boxes(reference_boxes, proposals, weights)
    _, _, pw, ph = _c(proposals)
    out[:, 0] = weights[0] * (reference_boxes[:, 0] - proposals[:, 0]) / pw
    out[:, 1] = weights[1] * (reference_boxes[:, 1] - proposals[:, 1]) / ph
    return out


def decode_unclamped(rel_codes, boxes, weights, bbox_xform_clip=CLIP):
    return SOL.decode_boxes(rel_codes, boxes, weights, bbox_xform_clip=math.inf)


def decode_two_sided(rel_codes, boxes, weights, bbox_xform_clip=CLIP):
    codes = rel_codes.reshape(len(rel_codes), -1, 4).copy()
    lo = -bbox_xform_clip * np.array(weights[2:])
    codes[..., 2:] = np.maximum(codes[..., 2:], lo)
    return SOL.decode_boxes(codes.reshape(len(rel_codes), -1), boxes, weights, bbox_xform_clip)


def decode_times_weights(rel_codes, boxes, weights, bbox_xform_clip=CLIP):
    return SOL.decode_boxes(rel_codes, boxes, tuple(1 / w for w in weights), bbox_xform_clip)


def decode_linear(rel_codes, boxes, weights, bbox_xform_clip=CLIP):
    cx, cy, w, h = (v[:, None] for v in _c(boxes))
    d = rel_codes.reshape(len(rel_codes), -1, 4) / np.asarray(weights)
    pcx, pcy = d[..., 0] * w + cx, d[..., 1] * h + cy
    pw, ph = np.minimum(d[..., 2], bbox_xform_clip) * w, np.minimum(d[..., 3], bbox_xform_clip) * h
    return np.stack([pcx - pw / 2, pcy - ph / 2, pcx + pw / 2, pcy + ph / 2], -1).reshape(
        len(rel_codes), -1
    )


# ----------------------------------------------------------------------------- matching


def learner_match(strict=False, own=True, all_ties=True, swapped=False, low_quality=True):
    def match(quality, high_threshold, low_threshold, allow_low_quality_matches):
        n = quality.shape[1]
        out = np.empty(n, dtype=np.int64)
        for p in range(n):
            g = int(np.argmax(quality[:, p]))
            q = quality[g, p]
            if (q > high_threshold) if strict else (q >= high_threshold):
                out[p] = g
            elif q < low_threshold:
                out[p] = -2 if swapped else -1
            else:
                out[p] = -1 if swapped else -2
        if allow_low_quality_matches and low_quality:
            for g in range(quality.shape[0]):
                best = quality[g].max()
                preds = (
                    np.flatnonzero(quality[g] == best) if all_ties else [int(np.argmax(quality[g]))]
                )
                for p in preds:
                    out[p] = int(np.argmax(quality[:, p])) if own else g
        return out

    return match


# ----------------------------------------------------------------------------- sampling


def learner_sample(
    fill_pos=False, fill_neg=True, rounded=False, by_index=False, minus_one_negative=False
):
    def balanced_sample(labels, priority, batch_size_per_image, positive_fraction):
        order = np.arange(len(labels)) if by_index else np.argsort(priority, kind="stable")
        is_neg = (labels <= 0) if minus_one_negative else (labels == 0)
        positives = [i for i in order if labels[i] >= 1]
        negatives = [i for i in order if is_neg[i]]
        quota = batch_size_per_image * positive_fraction
        quota = int(round(quota)) if rounded else int(quota)
        num_pos = min(quota, len(positives))
        num_neg = min(batch_size_per_image - (num_pos if fill_neg else quota), len(negatives))
        if fill_pos:
            num_pos = min(len(positives), batch_size_per_image - num_neg)
        pos, neg = np.zeros(len(labels), bool), np.zeros(len(labels), bool)
        pos[positives[:num_pos]] = True
        neg[negatives[:num_neg]] = True
        return pos, neg

    return balanced_sample


# ----------------------------------------------------------------------------- proposals


def learner_filter(global_topk=False, one_nms=False, clip=True, sigmoid=True):
    def filter_proposals(anchors, objectness, deltas, image_size, pre_nms_top_n, post_nms_top_n,
                         nms_thresh, score_thresh, min_size):  # fmt: skip
        sizes = [len(a) for a in anchors]
        level_of = np.repeat(np.arange(len(anchors)), sizes)
        if global_topk:
            idx = np.argsort(-objectness, kind="stable")[: pre_nms_top_n * len(anchors)]
        else:
            idx = np.concatenate([
                np.flatnonzero(level_of == lv)[np.argsort(-objectness[level_of == lv], kind="stable")[:pre_nms_top_n]]
                for lv in range(len(anchors))
            ])  # fmt: skip
        lvl = level_of[idx]
        boxes = SOL.decode_boxes(deltas[idx], np.concatenate(anchors)[idx], (1.0, 1.0, 1.0, 1.0))
        if clip:
            boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, image_size[1])
            boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, image_size[0])
        scores = 1 / (1 + np.exp(-objectness[idx])) if sigmoid else objectness[idx].copy()
        ok = ((boxes[:, 2] - boxes[:, 0]) >= min_size) & ((boxes[:, 3] - boxes[:, 1]) >= min_size)
        ok &= scores >= score_thresh
        boxes, scores, lvl = boxes[ok], scores[ok], lvl[ok]
        if one_nms:
            lvl = np.zeros_like(lvl)
        kept = []
        for level in np.unique(lvl):
            members = np.flatnonzero(lvl == level)
            kept.extend(members[SOL._nms(boxes[members], scores[members], nms_thresh)])
        kept = np.array(sorted(kept), dtype=int)
        kept = kept[np.argsort(-scores[kept], kind="stable")][:post_nms_top_n]
        return np.concatenate([boxes[kept], scores[kept, None]], axis=1)

    return filter_proposals


PLANTED = [
    ("cell_anchors", cells_swapped, "width and height swapped in the aspect ratio"),
    ("cell_anchors", cells_sizes_outer, "sizes outer, ratios inner"),
    ("cell_anchors", cells_python_round_half_up, "rounding half up"),
    ("cell_anchors", cells_unrounded, "no rounding"),
    ("cell_anchors", cells_full_size, "the full width instead of half of it"),
    ("grid_anchors", grid_centred, "anchors centred in their cell"),
    ("grid_anchors", grid_true_division, "a fractional stride"),
    ("grid_anchors", grid_anchor_major, "anchors outer, cells inner"),
    ("grid_anchors", grid_column_major, "cells in column-major order"),
    ("grid_anchors", grid_strides_swapped, "x and y strides swapped"),
    ("encode_boxes", encode_inverted_log, "the log of the wrong ratio"),
    ("encode_boxes", encode_by_target_size, "offsets divided by the target's size"),
    ("encode_boxes", encode_unweighted, "the weights ignored"),
    ("encode_boxes", encode_divided, "the weights divided instead of multiplied"),
    ("encode_boxes", encode_corners, "corner offsets instead of centre offsets"),
    ("decode_boxes", decode_unclamped, "forgetting the clamp"),
    ("decode_boxes", decode_two_sided, "clamping from below too"),
    ("decode_boxes", decode_times_weights, "multiplying by the weights instead of dividing"),
    ("decode_boxes", decode_linear, "no exp"),
    ("match", learner_match(strict=True), '">" instead of ">=" at the high threshold'),
    ("match", learner_match(swapped=True), "-1 and -2 swapped"),
    (
        "match",
        learner_match(own=False),
        "promoted predictions assigned to the ground truth that promoted them",
    ),
    ("match", learner_match(all_ties=False), "one best prediction per ground truth"),
    ("match", learner_match(low_quality=False), "no low-quality matches"),
    ("balanced_sample", learner_sample(fill_pos=True), "too few negatives made up with positives"),
    (
        "balanced_sample",
        learner_sample(fill_neg=False),
        "too few positives not made up with negatives",
    ),
    ("balanced_sample", learner_sample(rounded=True), "rounding the positive quota"),
    ("balanced_sample", learner_sample(by_index=True), "the priority ignored"),
    (
        "balanced_sample",
        learner_sample(minus_one_negative=True),
        "ignored labels (-1) counted as negatives",
    ),
    ("filter_proposals", learner_filter(global_topk=True), "the top-k over all levels at once"),
    ("filter_proposals", learner_filter(one_nms=True), "NMS across levels"),
    ("filter_proposals", learner_filter(clip=False), "no clipping"),
    ("filter_proposals", learner_filter(sigmoid=False), "scores left as logits"),
]


@pytest.mark.parametrize("fn,wrong,mistake", PLANTED, ids=[f"{p[0]}-{p[2]}" for p in PLANTED])
def test_planted_mistake_is_recognised(fn, wrong, mistake):
    report = check_module("06", _with(**{fn: wrong}))
    result = report.result(fn)
    assert result.status == "failed", report.text()
    assert result.mistakes == [mistake], report.text()
    assert f"looks like {mistake}" in report.text()
    others = [r for r in report.results if r.name != fn]
    assert all(r.status == "ok" for r in others), report.text()


def test_the_learner_versions_without_mistakes_are_correct():
    """The planted functions are only wrong where a knob says so."""
    report = check_module(
        "06",
        _with(
            match=learner_match(),
            balanced_sample=learner_sample(),
            filter_proposals=learner_filter(),
        ),
    )
    assert report.ok, report.text()


@pytest.mark.parametrize("path,code", [(STUBS, 1), (SOLUTION, 0)])
def test_command_line_exit_codes(path, code):
    assert_cli_exit_code("06", path, code)
