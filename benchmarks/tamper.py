"""Hostile programs against the evaluator; prints one JSON object.

    python benchmarks/tamper.py --data data/shakespeare_char --seed-iters 100
    python benchmarks/tamper.py --before-ref 3b32c4a   # also the scoring cost of that version

Every program goes through ``darwin evaluate --json --sandbox bwrap`` as a
user would run it. For each: its status, reason and perplexity next to the
honest program it is built on (and the seed's), and whether it gained anything
it should not have (``gained``: status ok and a lower perplexity than its
honest counterpart). Every evaluation of one run is scored on the same secret
windows (one ``DARWIN_WINDOW_SECRET`` per run), so the comparisons are paired;
the program that memorises the public fixed windows is also run with
``--fixed-windows`` (``embeds_public_windows_on_fixed``) to show what it would
have won there. The hostile programs are the test suite's
(``tests/evaluate/programs``) plus two edits of the real seed: one that trains
three times its iteration budget and reports the budget, one that never stops.

``--parts budget`` (``--hogs N``): the programs that do more work than the budget
(the seed at 3x its iterations, the seed twice as wide, training in ``load()``),
each against a baseline measured first, quiet; with ``--hogs`` N CPU-bound
processes join once the baselines are measured, and the seed is judged again
under them against its own baseline (it must stay ``ok``).

Scoring cost: ``score_wall_s`` of the same honest model under this evaluator
and, with ``--before-ref``, under the evaluator of that git ref (exported with
``git archive``, nothing in the repository changes), alternated ``--cost-repeats``
times so both see the same machine load.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
AGENT_TREE = REPO_ROOT / "tests" / "evaluate" / "agent_tree.py"  # the hostile programs' builder

BASELINE = "<honest>"  # in extra CLI args: the honest counterpart's result file
FIXED = "<fixed windows>"  # as target.txt: the public fixed windows' tokens, one line each
SECRET = os.environ.get("DARWIN_WINDOW_SECRET") or os.urandom(16).hex()  # one per run
# name -> (train program, model program, target.txt, honest counterpart, extra CLI args)
HOSTILE: dict[str, tuple[str | None, str | None, str | None, str, tuple[str, ...]]] = {
    "peek_everywhere": ("train_fake.py", "model_peek.py", None, "fake_table", ()),
    "peek_unless_rows_share_a_prefix": ("train_counts.py", "model_peek_smart.py",
                                        "compare\n", "counts", ()),
    "peek_unless_prefix_seen_before": ("train_counts.py", "model_peek_smart.py",
                                       "stateful\n", "counts", ()),
    "peek_except_at_likely_splice": ("train_counts.py", "model_peek_smart.py",
                                     "splice\n", "counts", ()),
    "peek_on_every_other_row": ("train_counts.py", "model_peek_smart.py", "count\n", "counts", ()),
    "peek_at_1_of_63_positions": ("train_counts.py", "model_peek_smart.py",
                                  "fraction\n31", "counts", ()),
    "peek_at_4_of_63_positions": ("train_counts.py", "model_peek_smart.py",
                                  "fraction\n5 21 40 58", "counts", ()),
    "note_left_by_load": ("train_counts.py", "model_leave.py", None, "counts", ()),
    "nan_logits": ("train_counts.py", "model_nan.py", "nan", "counts", ()),
    "forged_worker_frames": ("train_counts.py", "model_garbage.py", None, "counts", ()),
    "report_inflates_tokens": ("train_lie.py", None, "tokens", "bigram", ()),
    "report_inflates_params": ("train_lie.py", None, "params", "bigram", ()),
    "report_inflates_seconds": ("train_lie.py", None, "seconds", "bigram", ()),
    # 60 s more training in load() (run where the model is exported), against the baseline
    "trains_in_load": ("train_stash.py", "model_load_train.py", "60", "counts",
                       ("--baseline", BASELINE)),
    "state_between_calls": (None, "model_keep_state.py", None, "bigram", ()),
    "relay_hunts_held_out_text": (None, "model_relay.py", None, "bigram", ()),
    "embeds_public_windows": (None, "model_embed_windows.py", FIXED, "bigram", ()),
    "embeds_public_windows_on_fixed": (None, "model_embed_windows.py", FIXED, "bigram",
                                       ("--fixed-windows",)),
}  # fmt: skip
HONEST: dict[str, tuple[str | None, str | None]] = {
    "fake_table": ("train_fake.py", "model_table.py"),
    "counts": ("train_counts.py", "model_table.py"),
    "bigram": (None, None),
}


@functools.cache
def _agent_tree() -> Any:
    """tests/evaluate/agent_tree.py, loaded by path (the benchmark runs as a script)."""
    spec = importlib.util.spec_from_file_location("agent_tree", AGENT_TREE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_tree(root: Path, name: str, train: str | None, model: str | None,
              target: str | None, toml: str = "allowance_s = 15.0\n") -> Path:  # fmt: skip
    tree = _agent_tree().build_agent_tree(root / name, train, model, target)
    (tree / "darwin.toml").write_text("[sandbox]\ntimeout_s = 900.0\n" + toml)
    return tree


def seed_tree(root: Path, name: str, edit: tuple[str, str] | None) -> Path | None:
    """A copy of the real seed, optionally with one source edit (None if it no longer applies)."""
    tree = root / name
    shutil.copytree(REPO_ROOT / "seed", tree / "seed")
    if edit is not None:
        train = tree / "seed" / "train.py"
        src = train.read_text()
        if edit[0] not in src:
            return None
        train.write_text(src.replace(edit[0], edit[1], 1))
    return tree


def evaluate(tree: Path, data: Path, args: list[str], code: Path = REPO_ROOT) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k not in ("GITHUB_TOKEN", "OPENAI_API_KEY")}
    env["PYTHONPATH"] = str(code)
    env["DARWIN_WINDOW_SECRET"] = SECRET
    cmd = [sys.executable, "-m", "darwin_bot", "evaluate", str(tree), "--json", "--data",
           str(data), "--sandbox", "bwrap", *args]  # fmt: skip
    start = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=code, check=False)
    if proc.returncode != 0:
        return {"status": "error", "reason": proc.stderr.strip()[-300:], "seconds": 0.0}
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["seconds"] = round(time.monotonic() - start, 1)
    return result


def fixed_windows(data: Path, context: int = 64) -> str:
    """The public fixed windows of ``data`` and each one's next token, as an author could copy them."""
    import numpy as np

    sys.path.insert(0, str(REPO_ROOT))
    from darwin_bot.evaluate import WINDOW_SEED, choose_windows

    val = np.fromfile(data / "val.bin", dtype=np.uint16)
    chosen = choose_windows((len(val) - 1) // context, 64, WINDOW_SEED)
    return "\n".join(" ".join(map(str, val[w * context : (w + 1) * context + 1])) for w in chosen)


def brief(result: dict[str, Any]) -> dict[str, Any]:
    m, extra = result.get("metrics") or {}, result.get("extra") or {}
    return {
        "status": result["status"],
        "reason": result.get("reason", "")[:240],
        "perplexity": round(m["perplexity"], 4) if m else None,
        "mfu": m.get("mfu"),
        "train_wall_s": extra.get("train_wall_s"),
        "train_cpu_s": extra.get("train_cpu_s"),
        "score_cpu_s": extra.get("score_cpu_s"),
        "cost_ratio": extra.get("cost_ratio"),
        "score_wall_s": extra.get("score_wall_s"),
        "seconds": result.get("seconds"),
    }


def gained(hostile: dict[str, Any], honest: dict[str, Any]) -> bool:
    """Did the hostile program come out ahead of its honest counterpart?"""
    if hostile["status"] != "ok" or hostile["perplexity"] is None:
        return False
    return honest["status"] != "ok" or hostile["perplexity"] < honest["perplexity"] - 1e-6


def hostile_rows(root: Path, data: Path) -> list[dict[str, Any]]:
    honest = {}
    for name, (t, m) in HONEST.items():
        result = evaluate(make_tree(root, f"honest_{name}", t, m, None), data, ["--iters", "5"])
        (root / f"honest_{name}.json").write_text(json.dumps(result))
        honest[name] = brief(result)
    rows = []
    for name, (train, model, target, twin, extra) in HOSTILE.items():
        args = [str(root / f"honest_{twin}.json") if a == BASELINE else a for a in extra]
        target = fixed_windows(data) if target == FIXED else target
        got = brief(evaluate(make_tree(root, name, train, model, target), data,
                             ["--iters", "5", *args]))  # fmt: skip
        rows.append({"program": name, **got, "honest": twin,
                     "honest_perplexity": honest[twin]["perplexity"],
                     "gained": gained(got, honest[twin]),
                     # on the public windows (not the default): what the attack would win
                     **({"reference_only": True} if "--fixed-windows" in args else {})})  # fmt: skip
    return rows


CHEAT_ITERS = (
    'max_iters = int(os.environ.get("DARWIN_MAX_ITERS", P["max_iters"]))',
    'max_iters = 3 * int(os.environ.get("DARWIN_MAX_ITERS", P["max_iters"]))',
)
CHEAT_REPORT = ('    "iterations": it,', '    "iterations": it // 3,')
NEVER_STOP = ("if time_budget_s > 0 and it > 0 and now + t_step >= t_stop:", "if False:")


# name -> (train program, model program): the page cache, FLOPs from storage, embedded data
GUARD: dict[str, tuple[str | None, str | None]] = {
    "page_cache_probes": ("train_cache_relay.py", None),
    "expanded_tensor_checkpoint": ("train_expanded.py", None),
    "page_cache_relay_between_scoring_sandboxes": (None, "model_cache_relay.py"),
}
EMBEDDED = "model_embedded.py"  # refused before it runs: validated as an edit of the honest model


def guard_rows(root: Path, data: Path) -> list[dict[str, Any]]:
    """Channel probes and an inflated checkpoint through the evaluator; embedded data through
    the validator. Each against the honest bigram it is built on."""
    sys.path.insert(0, str(REPO_ROOT))  # the validator runs here, in this process
    from darwin_bot.errors import MutationRejected
    from darwin_bot.mutation import validate_files

    honest = brief(
        evaluate(make_tree(root, "guard_bigram", None, None, None), data, ["--iters", "5"])
    )
    rows = []
    for name, (train, model) in GUARD.items():
        result = evaluate(make_tree(root, name, train, model, None), data, ["--iters", "5"])
        log = result.get("log_tail") or ""
        denied = log.count(": EPERM") + log.count(": denied (Operation not permitted)")
        rows.append({"program": name, **brief(result), "probes_denied": denied,
                     "honest_perplexity": honest["perplexity"],
                     "gained": gained(brief(result), honest)})  # fmt: skip
    programs = AGENT_TREE.parent / "programs"
    old = {"seed/model.py": (programs / "honest" / "seed" / "model.py").read_text()}
    try:
        validate_files(old, {"seed/model.py": (programs / EMBEDDED).read_text()},
                       evolvable=("seed/",), allowed_imports=("torch", "pickle"),
                       max_file_lines=800)  # fmt: skip
        verdict = {"status": "accepted", "reason": ""}
    except MutationRejected as exc:
        verdict = {"status": "refused", "reason": str(exc)[:240]}
    rows.append(
        {"program": "embedded_windows", **verdict, "gained": verdict["status"] != "refused"}
    )
    return rows


def seed_rows(root: Path, data: Path, iters: int, seconds: float) -> dict[str, Any]:
    """The seed, a seed that ignores its iteration budget, and one that ignores its seconds."""
    seed = evaluate(seed_tree(root, "seed", None), data, ["--iters", str(iters)])  # type: ignore[arg-type]
    out: dict[str, Any] = {"seed": brief(seed)}
    baseline = root / "seed.json"
    baseline.write_text(json.dumps(seed))
    cheat = seed_tree(root, "seed_3x_iters", CHEAT_ITERS)
    if cheat is not None:
        report = cheat / "seed" / "train.py"
        report.write_text(report.read_text().replace(*CHEAT_REPORT))
        got = brief(evaluate(cheat, data, ["--iters", str(iters), "--baseline", str(baseline)]))
        out["seed_trains_3x_its_iteration_budget"] = {**got, "gained": gained(got, out["seed"])}
    loop = seed_tree(root, "seed_never_stops", NEVER_STOP)
    key = f"seed_ignores_a_{seconds:g}_s_budget"
    if loop is not None:
        got = brief(evaluate(loop, data, ["--seconds", str(seconds)]))
        out[key] = {**got, "gained": False}
    else:
        out[key] = {"status": "skipped: the seed's stop condition is not the one this edits"}
    return out


BIGGER_MODEL = ('n_embd = P["n_embd"]', 'n_embd = 2 * P["n_embd"]')


def _hogs(n: int) -> list[subprocess.Popen[bytes]]:
    return [subprocess.Popen([sys.executable, "-c", "while 1: pass"]) for _ in range(n)]


def budget_rows(root: Path, data: Path, iters: int, hogs: int) -> dict[str, Any]:
    """Programs that do more work than the budget, each against a baseline measured first.

    With ``hogs``, that many CPU-bound processes join once the baselines are measured and
    run until the last program is judged, as on a machine that gets busy later; the seed
    itself is evaluated again under them against its own baseline (it must stay ``ok``).
    """
    seed = evaluate(seed_tree(root, "b_seed", None), data, ["--iters", str(iters)])  # type: ignore[arg-type]
    counts = evaluate(make_tree(root, "b_counts", "train_counts.py", "model_table.py", None),
                      data, ["--iters", "5"])  # fmt: skip
    (root / "b_seed.json").write_text(json.dumps(seed))
    (root / "b_counts.json").write_text(json.dumps(counts))
    against_seed = ["--iters", str(iters), "--baseline", str(root / "b_seed.json")]
    out: dict[str, Any] = {"hogs": hogs, "baseline_seed": brief(seed),
                           "baseline_counts": brief(counts)}  # fmt: skip
    running = _hogs(hogs)
    load = [os.getloadavg()[0]]
    try:
        out["seed_again"] = brief(evaluate(seed_tree(root, "b_seed2", None), data, against_seed))  # type: ignore[arg-type]
        load.append(os.getloadavg()[0])
        for name, edits in (("seed_trains_3x_its_iteration_budget", (CHEAT_ITERS, CHEAT_REPORT)),
                            ("seed_twice_as_wide", (BIGGER_MODEL,))):  # fmt: skip
            tree = seed_tree(root, f"b_{name}", edits[0])
            if tree is None:
                out[name] = {"status": "skipped: the edit no longer applies to the seed"}
                continue
            train = tree / "seed" / "train.py"
            for old, new in edits[1:]:
                train.write_text(train.read_text().replace(old, new))
            out[name] = brief(evaluate(tree, data, against_seed))
            load.append(os.getloadavg()[0])
        tree = make_tree(root, "b_trains_in_load", "train_stash.py", "model_load_train.py", "60")
        out["trains_in_load"] = brief(evaluate(tree, data, ["--iters", "5", "--baseline",
                                                            str(root / "b_counts.json")]))  # fmt: skip
        load.append(os.getloadavg()[0])
    finally:
        for hog in running:
            hog.kill()
            hog.wait()
    out["loadavg_while_judged"] = load
    hostile = ("seed_trains_3x_its_iteration_budget", "seed_twice_as_wide", "trains_in_load")
    out["stopped"] = all(out[k]["status"] != "ok" for k in hostile)
    out["seed_again_ok"] = out["seed_again"]["status"] == "ok"
    return out


def scoring_cost(root: Path, data: Path, before_ref: str | None, repeats: int) -> dict[str, Any]:
    tree = make_tree(root, "cost_bigram", None, None, None, toml="")  # keys both versions know
    codes = {"after": REPO_ROOT}
    if before_ref:
        old = root / "before"
        old.mkdir()
        archive = subprocess.run(["git", "-C", str(REPO_ROOT), "archive", before_ref, "darwin_bot"],
                                 capture_output=True, check=True).stdout  # fmt: skip
        subprocess.run(["tar", "-x", "-C", str(old)], input=archive, check=True)
        codes["before"] = old
    walls: dict[str, list[float]] = {k: [] for k in codes}
    for _ in range(repeats):
        for name, code in codes.items():
            r = evaluate(tree, data, ["--iters", "5"], code=code)
            if r["status"] == "ok":
                walls[name].append(r["extra"]["score_wall_s"])
    out: dict[str, Any] = {k: {"score_wall_s": v, "median": statistics.median(v) if v else None}
                           for k, v in walls.items()}  # fmt: skip
    if before_ref and out["before"]["median"] and out["after"]["median"]:
        out["ratio"] = round(out["after"]["median"] / out["before"]["median"], 3)
        out["before_ref"] = before_ref
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO_ROOT / "data" / "shakespeare_char")
    parser.add_argument("--seed-iters", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=10.0, help="the never-stopping seed's")
    parser.add_argument("--before-ref", default=None, help="git ref of the evaluator to compare")
    parser.add_argument("--cost-repeats", type=int, default=3)
    parser.add_argument("--parts", default="cost,hostile,guard,seed",
                        help="comma-separated: cost, hostile, guard, seed, budget")  # fmt: skip
    parser.add_argument("--hogs", type=int, default=0,
                        help="budget part: CPU-bound processes joining after its baselines")  # fmt: skip
    args = parser.parse_args(argv)
    if not (args.data / "val.bin").is_file():
        print(f"tamper: no val.bin in {args.data}; run 'darwin data prepare'", file=sys.stderr)
        return 2
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="darwin-tamper-") as tmp:
        root = Path(tmp)
        out: dict[str, Any] = {"note": "2-core CPU shared with other work: timings are loaded"}
        parts = set(args.parts.split(","))
        if "cost" in parts:
            out["scoring_cost"] = scoring_cost(root, args.data, args.before_ref, args.cost_repeats)
        if "hostile" in parts:
            out["hostile"] = hostile_rows(root, args.data)
        if "guard" in parts:
            out["guard"] = guard_rows(root, args.data)
        if "seed" in parts:
            out["seed"] = seed_rows(root, args.data, args.seed_iters, args.seconds)
        if "budget" in parts:
            out["budget"] = budget_rows(root, args.data, args.seed_iters, args.hogs)
    rows = out.get("hostile", []) + out.get("guard", [])
    scored = [r for r in rows if not r.get("reference_only")]
    out["any_gained"] = any(r["gained"] for r in scored) or any(
        v.get("gained") for k, v in out.get("seed", {}).items() if k != "seed"
    )
    if "budget" in out:
        out["any_gained"] = out["any_gained"] or not out["budget"]["stopped"]
    out["wall_s"] = round(time.monotonic() - started, 1)
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
