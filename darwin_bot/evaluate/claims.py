"""What the training program claims, held against what the harness measured.

``train.json`` is the program's own report: every number in it is a claim.
The score never rests on it: perplexity comes from the held-out logits, the
cost from the wall time of the sandboxed process, FLOPs per token from the
saved weights as the scoring worker read them before any agent code ran. Only
throughput (and so MFU) is taken from the report, and only within what the
measurements allow: a claim the device cannot deliver in the measured time, or
a parameter count the weights contradict, is a :class:`ClaimRejected`.
"""

from __future__ import annotations

import json
import math
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAX_REPORT_BYTES = 1 << 20  # train.json larger than this is not a report
PARAMS_TOLERANCE = 0.10  # a reported parameter count may differ from the weights' by this much
CLOCK_SLACK_S = 1.0  # a process's own clock and ours start a moment apart
# The scoring worker's parameter count for a checkpoint whose views claim more elements
# than their storage holds (score_worker.OVERCLAIMED; that file imports no darwin_bot).
OVERCLAIMED = 2**64 - 1


class ClaimRejected(Exception):
    """The report claims what the measurements rule out (the result is ``rejected``)."""


@dataclass(frozen=True)
class Report:
    """The few numbers of train.json the harness uses (all claims)."""

    iterations: int
    tokens_seen: float
    train_seconds: float
    num_params: float | None  # optional in the report


@dataclass(frozen=True)
class Throughput:
    """MFU and tokens/s as far as the harness vouches for them."""

    tokens_per_s: float
    train_seconds: float
    flops_per_token: float  # 0 when the weights could not be read as a checkpoint
    mfu: float


def read_report(out: Path) -> Report:
    """The agent's train.json, read without following links and with a size cap (ValueError)."""
    try:
        fd = os.open(out / "train.json", os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        raise ValueError("train.py wrote no train.json (or it is not a regular file)") from exc
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise ValueError("train.json is not a regular file")
        raw = f.read(MAX_REPORT_BYTES + 1)
    if len(raw) > MAX_REPORT_BYTES:
        raise ValueError("train.json is larger than 1 MiB")
    report = json.loads(raw)
    if not isinstance(report, dict):
        raise ValueError("train.json is not a JSON object")
    params = report.get("num_params")
    return Report(
        iterations=int(_number(report, "iterations")),
        tokens_seen=_number(report, "tokens_seen"),
        train_seconds=_number(report, "train_seconds"),
        num_params=None if params is None else _number(report, "num_params"),
    )


def _number(report: dict[str, Any], key: str) -> float:
    value = report.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"train.json: {key} must be a finite number, got {value!r}")
    if value < 0:
        raise ValueError(f"train.json: {key} must not be negative, got {value!r}")
    return float(value)


def throughput(report: Report, wall_s: float, weight_params: int, peak_flops: float) -> Throughput:
    """Vouched throughput of a run; ClaimRejected for a claim the measurements rule out.

    FLOPs per token are ``6 N`` with ``N`` the elements the saved weights store
    (the attention term of PaLM's estimate needs the model's shape, which only
    the program reports, so it is left out: a lower bound). Tokens per second
    are the report's tokens over its seconds, the seconds clamped to
    [wall/2, wall] of the measured process wall time.
    """
    if weight_params == OVERCLAIMED:
        raise ClaimRejected(
            "model.pt claims more than it stores: a tensor is an expanded or overlapping "
            "view of a smaller storage (it would pass its bytes off as parameters); "
            "save tensors .contiguous()"
        )
    if report.train_seconds > wall_s + CLOCK_SLACK_S:
        raise ClaimRejected(
            f"train.json claims {report.train_seconds:.1f} s of training, "
            f"but the process ran {wall_s:.1f} s"
        )
    if weight_params and report.num_params is not None:
        off = abs(report.num_params - weight_params) / weight_params
        if off > PARAMS_TOLERANCE:
            raise ClaimRejected(
                f"train.json reports {report.num_params:,.0f} parameters, but the saved "
                f"weights hold {weight_params:,} ({100 * off:.0f}% off)"
            )
    seconds = min(max(report.train_seconds, 0.5 * wall_s), wall_s)
    tokens_per_s = report.tokens_seen / seconds if seconds > 0 else 0.0
    flops_per_token = 6.0 * weight_params
    mfu = flops_per_token * tokens_per_s / peak_flops
    if mfu > 1.0:
        raise ClaimRejected(
            f"train.json claims {report.tokens_seen:,.0f} tokens in {seconds:.1f} s "
            f"(of {wall_s:.1f} s measured): {100 * mfu:.0f}% of the device's peak FLOP/s "
            "for these weights, more than it can deliver"
        )
    return Throughput(tokens_per_s, seconds, flops_per_token, mfu)
