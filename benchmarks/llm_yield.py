"""The yield of an LLM as a mutator: how many of its calls become edits that train and help.

For one server and model, one generation of ``--offspring`` offspring of the
seed on a scratch repository (``darwin demo``'s), with real training in the
sandbox on the ``--preset``, and the funnel as JSON:

  calls      LLM calls made for mutations (the preflight call not counted)
  parsed     calls whose reply parses as an edit or a "NO CHANGE" (not cut, not prose)
  validated  edits that passed validation (applied or repaired)
  smoke_ok   offspring whose smoke test passed
  trained_ok offspring whose full training run ended ok
  better     offspring with a lower held-out perplexity than their parent (the seed)

with the tokens (and the dollars, when the model is priced) per validated edit,
and the reasons calls were lost, counted.

  python benchmarks/llm_yield.py --local --offspring 3          # SmolLM2-135M via .ci/llama
  python benchmarks/llm_yield.py --base-url URL --model NAME    # any OpenAI-compatible server

``--local`` starts ``.ci/llama/serve.mjs`` (``bash .ci/setup`` installs it) for the run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import _llama_server as llama  # noqa: E402
from darwin_bot.config import from_dict  # noqa: E402
from darwin_bot.core import Outcome  # noqa: E402
from darwin_bot.errors import MutationRejected  # noqa: E402
from darwin_bot.llm import Completion, Message  # noqa: E402
from darwin_bot.mutation import parse_reply  # noqa: E402


class Recorder:
    """The engine's LLM factory, keeping every completion it hands back."""

    def __init__(self, factory: Any) -> None:
        self.factory = factory
        self.replies: list[Completion] = []

    def __getattr__(self, name: str) -> Any:  # preflight, totals, stop_reason, ...
        return getattr(self.factory, name)

    def __call__(self, seed: int) -> Any:
        llm = self.factory(seed)
        inner_complete = llm.complete

        def complete(messages: list[Message]) -> Completion:
            c = inner_complete(messages)
            self.replies.append(c)
            return c

        llm.complete = complete
        return llm


def parses(c: Completion) -> bool:
    """Whether the reply is an edit or a NO CHANGE the pipeline can read."""
    if c.finish_reason == "length":
        return False
    try:
        r = parse_reply(c.text, agent="bench", generation=1)
    except MutationRejected:
        return False
    return r.no_change or (not r.truncated and (r.code is not None or bool(r.blocks)))


def _config(args: argparse.Namespace, url: str, data: Path) -> dict[str, Any]:
    llm: dict[str, Any] = {
        "backend": "openai",
        "model": args.model,
        "base_url": url,
        "max_tokens": args.max_tokens,
        "max_retries": 1,
        "timeout_s": 900.0,
    }
    return {
        "evolution": {
            "population": args.offspring + 1,
            "survivors": 1,
            "seed": args.seed,
            "mutation_rate": args.mutation_rate,
        },
        "budget": {"data": str(data), "preset": args.preset, "repeats": 1},
        "llm": llm,
    }


def measure(args: argparse.Namespace, url: str, work: Path) -> dict[str, Any]:
    from darwin_bot.cli import build_engine, make_scratch_repo
    from darwin_bot.program import prepare_shakespeare, prepare_synthetic

    root, corpus = work / "repo", work / "data"
    shared = ROOT.parent / "shared" / "data" / "tinyshakespeare.txt"
    if shared.exists():
        prepare_shakespeare(corpus, input_path=shared)
    else:
        prepare_synthetic(corpus, seed=0)
    make_scratch_repo(root, "")
    cfg = from_dict(_config(args, url, corpus))
    engine = build_engine(root, cfg, quiet=True)
    recorder = Recorder(engine.llm_factory)
    engine.llm_factory = engine.breeder.llm_factory = recorder
    t0 = time.monotonic()
    engine.run(1)
    wall = time.monotonic() - t0
    return funnel(engine, recorder, wall)


def funnel(engine: Any, recorder: Recorder, wall: float) -> dict[str, Any]:
    events = [m for m in engine.memory.mutations() if m["generation"] == 1]
    records = engine.offspring_records(1)
    base = engine.baseline_metrics().perplexity
    seed = engine.cfg.evolution.seed
    smoke_ok = [r for r in records.values() if r.ok and r.head]
    results = {r.agent: engine.evaluate_ref(r.head, seed) for r in smoke_ok}  # cached: no training
    trained = {a: res for a, res in results.items() if res.ok and res.metrics is not None}
    better = [a for a, res in trained.items() if res.metrics.perplexity < base]  # type: ignore[union-attr]
    validated = [e for e in events if e["outcome"] in (Outcome.APPLIED, Outcome.REPAIRED)]
    calls = recorder.replies
    t = engine.llm_factory.totals(1)
    lost = Counter(
        _why(e["reason"]) for e in events if e["outcome"] == Outcome.REJECTED and e["model"]
    )
    per_edit = max(1, len(validated))
    return {
        "model": engine.cfg.llm.model,
        "offspring": len(records),
        "funnel": {
            "calls": len(calls),
            "parsed": sum(parses(c) for c in calls),
            "validated": len(validated),
            "smoke_ok": len(smoke_ok),
            "trained_ok": len(trained),
            "better": len(better),
        },
        "cut_at_token_limit": sum(c.finish_reason == "length" for c in calls),
        "lost_because": dict(lost.most_common()),
        "tokens": {"prompt": t.prompt_tokens, "completion": t.completion_tokens},
        "tokens_per_valid_edit": round((t.prompt_tokens + t.completion_tokens) / per_edit)
        if validated
        else None,
        "usd": round(t.usd, 6) if not t.unknown_calls else None,
        "usd_per_valid_edit": round(t.usd / per_edit, 6)
        if validated and not t.unknown_calls
        else None,
        "baseline_perplexity": round(base, 4),
        "perplexities": {a: round(r.metrics.perplexity, 4) for a, r in trained.items()},  # type: ignore[union-attr]
        "wall_s": round(wall, 1),
    }


def _why(reason: str) -> str:
    """A rejection reason without its particulars (figures, names), to count alike ones together."""
    if "cut at the token limit" in reason:
        return "cut at the token limit"
    if "does not fit the model's context window" in reason:
        return "prompt does not fit the context window"
    text = re.sub(r"^[\w./-]+\.py(::[\w.]+)?: ", "", reason)  # the file or chunk it names
    return re.split(r"[:;(]", text)[0].strip()[:80]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--local", action="store_true", help="start .ci/llama's SmolLM2 server")
    ap.add_argument("--base-url", default="", help="an OpenAI-compatible server's base URL")
    ap.add_argument("--model", default=llama.MODEL_ID)
    ap.add_argument("--offspring", type=int, default=3)
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--max-tokens", type=int, default=512)
    ap.add_argument("--mutation-rate", type=float, default=0.25, help="evolution.mutation_rate")
    ap.add_argument("--ctx", type=int, default=4096, help="--local: the server's context size")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    if not args.local and not args.base_url:
        ap.error("give --local or --base-url")
    work = args.workdir or Path(tempfile.mkdtemp(prefix="darwin-yield-"))
    load = os.getloadavg()
    if args.local:
        why = llama.missing()
        if why:
            ap.error(why)
        with llama.LlamaServer(ctx=args.ctx) as server:
            out = measure(args, server.url, work)
            out["server"] = {"ctx": args.ctx, "threads": 1, **server.stats()}
    else:
        out = measure(args, args.base_url, work)
    out["load_before"] = [round(x, 2) for x in load]
    out["load_after"] = [round(x, 2) for x in os.getloadavg()]
    out["args"] = {k: str(v) for k, v in vars(args).items()}
    text = json.dumps(out, indent=2)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
