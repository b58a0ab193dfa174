"""The evaluator's overhead over bare training, and where its fixed part goes; prints JSON.

    python benchmarks/eval_overhead.py --repeats 5                 # tiny preset, bwrap
    python benchmarks/eval_overhead.py --repeats 3 --iters 200 --sandbox none
    python benchmarks/eval_overhead.py --repeats 3 --against /work/main  # before / after

Alternates, ``--repeats`` times: the bare ``python seed/train.py`` under the same
``DARWIN_*`` environment the evaluator sets (its default budget unless ``--iters``),
then the whole ``python -m darwin_bot evaluate . --preset P --json --sandbox S``.
The ratio whole / bare is the figure the target (at most 1.10x) is about.

The fixed part is then taken apart with probes, each its own fresh process, each
timed ``--repeats`` times: Python start, ``import torch``, the CLI's start, a
sandbox start (the evaluator's own ``run_sandboxed`` running ``python -c pass``),
the CPU peak probe (``evaluate/peak.py``, with its torch import), and the model
load of the export step. The evaluator's own ``train_wall_s`` and
``score_wall_s`` split the whole run into training (with the export, whose own
time the export step reports in the log) and scoring (one sandbox running the
exported graph) and the rest.

``--against DIR``: another checkout's evaluator (its ``darwin_bot``) evaluates
the same seed in the same alternation (bare, this tree's, DIR's), so both see the
same load; its whole time and ratio are reported beside this tree's.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable

PEAK_PROBE = (
    "import time; t = time.perf_counter(); from darwin_bot.evaluate import peak; "
    "peak.measure('cpu', threads={threads}); print(time.perf_counter() - t)"
)
LOAD_PROBE = (
    "import sys, time, importlib.util; import torch; t = time.perf_counter(); "
    "spec = importlib.util.spec_from_file_location('model', sys.argv[1]); "
    "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m); "
    "m.load(sys.argv[2], 'cpu'); print(time.perf_counter() - t)"
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny", choices=["tiny", "paper", "nanogpt"])
    parser.add_argument("--iters", type=int, default=None, help="default: the evaluator's budget")
    parser.add_argument("--data", type=Path, default=REPO_ROOT / "data" / "shakespeare_char")
    parser.add_argument("--sandbox", default="bwrap", choices=["auto", "bwrap", "unshare", "none"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0, help="DARWIN_SEED (evaluate's default 0)")
    parser.add_argument("--against", type=Path, default=None,
                        help="another checkout whose evaluator runs alternated with this one")  # fmt: skip
    args = parser.parse_args(argv)
    for name in ("train.bin", "val.bin", "meta.json"):
        if not (args.data / name).is_file():
            print(f"eval_overhead: no {name} in {args.data}; run 'darwin data prepare'",
                  file=sys.stderr)  # fmt: skip
            return 2
    if args.repeats < 1:
        print("eval_overhead: --repeats must be at least 1", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="darwin-overhead-") as tmp:
        report = measure(args, Path(tmp))
    print(json.dumps(report, indent=2))
    return 0 if report["status"] == "ok" else 1


def timed(cmd: list[str], env: dict[str, str] | None = None, cwd: Path = REPO_ROOT):
    """(wall seconds, stdout) of one run of cmd; raises with its stderr when it fails."""
    t0 = time.perf_counter()
    # its own session, as the evaluator starts its sandboxes: with the kernel's autogroup
    # scheduling a session shares the CPU as one, so a bare run in ours would get less
    proc = subprocess.run(
        cmd, env=env, cwd=cwd, capture_output=True, text=True, start_new_session=True
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(
            f"{' '.join(cmd[:4])} ... exited {proc.returncode}: {proc.stderr[-800:]}"
        )
    return wall, proc.stdout


def base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DARWIN_")}
    return env | {"PYTHONPATH": str(REPO_ROOT), "PYTHONDONTWRITEBYTECODE": "1"}


def bare_train(args: argparse.Namespace, tmp: Path, iters: int | None, i: int) -> float:
    """Wall seconds of python seed/train.py as the evaluator would run it, unsandboxed."""
    data = tmp / "bare-data"
    if not data.exists():
        data.mkdir()
        for name in ("train.bin", "meta.json"):
            shutil.copyfile(args.data / name, data / name)
    env = base_env() | {
        # what the evaluator gives training: waiting OpenMP threads sleep (spinning ones,
        # on a busy machine, made a bare run 10x slower than the sandboxed one)
        "OMP_WAIT_POLICY": "PASSIVE",
        "DARWIN_DATA": str(data),
        "DARWIN_OUT": str(tmp / f"bare-out-{i}"),
        "DARWIN_SEED": str(args.seed),
        "DARWIN_DEVICE": "cpu",
        "DARWIN_PRESET": args.preset,
    }
    if iters is not None:
        env["DARWIN_MAX_ITERS"] = str(iters)
    wall, _ = timed([PY, "seed/train.py"], env)
    return wall


def whole_evaluation(
    args: argparse.Namespace, code: Path = REPO_ROOT
) -> tuple[float, dict[str, Any]]:
    """Wall seconds of darwin evaluate (``code``'s), and its result's extra (train_wall_s, ...)."""
    # run from ``code``: ``python -m`` puts the working directory first on sys.path
    cmd = [PY, "-m", "darwin_bot", "evaluate", str(REPO_ROOT), "--preset", args.preset, "--json",
           "--sandbox", args.sandbox, "--data", str(args.data.resolve())]  # fmt: skip
    if args.iters is not None:
        cmd += ["--iters", str(args.iters)]
    wall, out = timed(cmd, base_env() | {"PYTHONPATH": str(code)}, cwd=code)
    result = json.loads(out)
    run = result["runs"][0] if "runs" in result else result
    if run.get("status") != "ok":
        raise RuntimeError(f"darwin evaluate: {run.get('status')}: {run.get('reason')}")
    found = re.findall(r"exported in ([0-9.]+) s", run.get("log_tail", ""))
    return wall, {**run.get("extra", {}), "export_s": float(found[-1]) if found else 0.0}


def sandbox_start(backend: str) -> float:
    """Wall seconds of the evaluator's sandbox running python -c pass (no torch)."""
    from darwin_bot.evaluate import Limits, Mount, resolve_backend, run_sandboxed, scrub_env

    resolved = resolve_backend(backend)
    with tempfile.TemporaryDirectory(prefix="darwin-sbx-") as tmp:
        os.chmod(tmp, 0o755)  # the sandbox may run under another uid, as the evaluator's does
        mount = Mount("tree", Path(tmp))
        run = run_sandboxed(
            [PY, "-c", "pass"], backend=resolved, mounts=[mount], cwd=mount.inside(resolved),
            env=scrub_env({}), limits=Limits(60.0, 8192, 256),
        )  # fmt: skip
    if run.returncode != 0:
        raise RuntimeError(f"sandbox start probe exited {run.returncode}: {run.log_tail}")
    return run.wall_s


def probes(args: argparse.Namespace, tmp: Path, model_pt: Path) -> dict[str, float]:
    """One timing of each fixed part, each in a fresh process."""
    env = base_env() | {"XDG_CACHE_HOME": str(tmp / "cache")}  # the probe's cache stays here
    threads = len(os.sched_getaffinity(0))
    peak_wall, peak_inner = timed([PY, "-c", PEAK_PROBE.format(threads=threads)], env)
    load_wall, load_inner = timed([PY, "-c", LOAD_PROBE, "seed/model.py", str(model_pt)], env)
    return {
        "python_start_s": timed([PY, "-c", "pass"], env)[0],
        "torch_import_s": timed([PY, "-c", "import torch"], env)[0],
        "cli_start_s": timed([PY, "-m", "darwin_bot", "--help"], env)[0],
        "sandbox_start_s": sandbox_start(args.sandbox),
        "peak_probe_s": float(peak_inner),  # its own torch import included
        "model_load_s": float(load_inner),  # import model.py + load(), torch already in
    }


def measure(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """The alternated bare / whole runs, the probes, and their summary."""
    load_before = os.getloadavg()[0]
    rows: list[dict[str, Any]] = []
    try:
        timed([PY, "-c", "import torch"])  # page cache warm for the first bare run
        for i in range(args.repeats):
            bare = bare_train(args, tmp, args.iters, i)
            whole, extra = whole_evaluation(args)
            rows.append({"bare_s": bare, "whole_s": whole, **parts_of(extra)})
            if args.against is not None:
                other, other_extra = whole_evaluation(args, args.against)
                rows[-1] |= {"against_whole_s": other,
                             **{f"against_{k}": v for k, v in parts_of(other_extra).items()}}  # fmt: skip
            rows[-1].update(probes(args, tmp, tmp / f"bare-out-{i}" / "model.pt"))
            print(f"repeat {i}: {json.dumps(rows[-1])}", file=sys.stderr, flush=True)
    except (RuntimeError, ValueError, KeyError) as exc:
        return {"status": "failed", "error": str(exc), "rows": rows}
    return summarise(args, rows, (load_before, os.getloadavg()[0]))


def parts_of(extra: dict[str, Any]) -> dict[str, float]:
    """The evaluator's own split: training, scoring (every scoring process), the rest."""
    score = sum(
        float(v) for k, v in extra.items() if k.startswith("score") and k.endswith("wall_s")
    )
    curve = extra.get("curve") if isinstance(extra.get("curve"), dict) else {}
    return {"eval_train_wall_s": float(extra["train_wall_s"]), "eval_score_wall_s": score,
            # what training is charged (its sandbox's CPU time): the held scoring sandbox's
            # start-up competes with it for the cores, never adds to it
            "eval_train_cpu_s": float(extra.get("train_cpu_s", 0.0)),
            # the curve's checkpoints (their own sandbox before evaluator version 6, a phase
            # of the scoring sandbox since) and how long that sandbox was held before its job
            "curve_score_wall_s": float(curve.get("score_wall_s", 0.0)),
            "score_held_s": float(extra.get("score_held_s", 0.0)),
            "export_s": float(extra.get("export_s", 0.0)),
            # 0 when the evaluator used a kept peak figure and ran no probe
            "peak_probed": float(extra.get("peak_source") == "measured")}  # fmt: skip


def summarise(args: argparse.Namespace, rows: list[dict[str, Any]], loads) -> dict[str, Any]:
    med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
    ratios = [r["whole_s"] / r["bare_s"] for r in rows]
    fixed = med["whole_s"] - med["bare_s"]
    harness = med["whole_s"] - med["eval_train_wall_s"] - med["eval_score_wall_s"]
    probe = med["peak_probe_s"] * med["peak_probed"]
    score_known = med["sandbox_start_s"] + med["torch_import_s"] - med["python_start_s"]
    held = med["score_held_s"] > 0
    against = {}
    if "against_whole_s" in med:
        others = [r["against_whole_s"] / r["bare_s"] for r in rows]
        against = {"against": {"code": str(args.against), "whole_s": med["against_whole_s"],
                               "fixed_s": med["against_whole_s"] - med["bare_s"],
                               "harness_outside_both_sandboxes_s": med["against_whole_s"]
                               - med["against_eval_train_wall_s"] - med["against_eval_score_wall_s"],
                               "peak_probed": med["against_peak_probed"],
                               "ratio_whole_over_bare": {"median": statistics.median(others),
                                                         "values": others}}}  # fmt: skip
    return {
        "status": "ok",
        **against,
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "preset": args.preset,
        "iters": args.iters or "evaluator default",
        "sandbox": args.sandbox,
        "repeats": len(rows),
        "load_avg_1m_before_after": list(loads),
        "bare_s": med["bare_s"],
        "whole_s": med["whole_s"],
        "ratio_whole_over_bare": {
            "median": statistics.median(ratios),
            "min": min(ratios),
            "max": max(ratios),
            "values": ratios,
        },
        "fixed_s": fixed,
        "breakdown_s": {
            # the training sandbox: bwrap + launcher + the export on top of the same training
            "train_sandbox": med["eval_train_wall_s"] - med["bare_s"],
            "  of which the export (load(), torch.export, save; reported)": med["export_s"],
            "  of which the model load in it": med["model_load_s"],
            "scoring_process": med["eval_score_wall_s"],
            "  of which sandbox start (python -c pass inside)": 0.0
            if held
            else med["sandbox_start_s"],
            "  of which torch import": 0.0 if held else med["torch_import_s"],
            "  of which the rest (read and check the graph, run it, frames)": med[
                "eval_score_wall_s"
            ]
            - (0.0 if held else score_known),
            # version 6: the sandbox starts and imports torch while training runs, held
            "scoring sandbox held while training ran (its start-up in it)": med["score_held_s"],
            "curve checkpoints' scoring (in the harness's share below)": med["curve_score_wall_s"],
            "harness outside both sandboxes": harness,
            "  of which CLI start (python -m darwin_bot --help)": med["cli_start_s"],
            "  of which CPU peak probe, with its torch import": probe,
            "  of which the rest (copies, hashing, windows, loss)": harness
            - med["cli_start_s"]
            - probe,
        },  # fmt: skip
        "probes_median_s": {k: med[k] for k in rows[0] if k.endswith("_s")},
        "rows": rows,
    }


if __name__ == "__main__":
    sys.exit(main())
