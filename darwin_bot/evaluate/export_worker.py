"""Training-sandbox entry: run the program's training script, then export its model as a graph.

Run by file path inside the training sandbox (standard library and torch only,
never darwin_bot)::

    export_worker.py --contract C --model-file F --tree DIR --checkpoint PATH
                     --archive PATH --context T --device D -- SCRIPT [ARGS...]

It runs ``SCRIPT`` as ``python SCRIPT ARGS...`` would (``__main__``,
``sys.argv``, the script's folder first on ``sys.path``), in this process, so
the export costs no second interpreter start. When the script exits non-zero
this process exits with its code. Then it builds the model the way the
contract says (darwin: ``seed/model.py``'s ``load(path, device)``; nanogpt: the
adapter, with the trained checkpoint) and writes ``torch.export`` of
``forward(idx[1, T]) -> logits[1, T, vocab]`` at the scoring shape, in eval
mode, to ``--archive``. When the model cannot be exported, the reason goes to
``<archive>.error`` and the exit code is still 0: training succeeded, and the
harness turns the missing graph into a ``rejected`` result with that reason.

Nothing here is trusted: the agent's code runs in this process and may change
any of it. The harness trusts only what it checks in the archive (see
``graph_archive.py``), never that this script produced it.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import runpy
import sys
import time
import traceback
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))


def run_script(script: str, args: list[str]) -> None:
    """``python script args...`` in this process; exits with the script's failing code."""
    sys.argv = [script, *args]
    sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as exc:
        if exc.code not in (None, 0):
            raise
    except BaseException:
        traceback.print_exc()
        sys.exit(1)


def _import(name: str, path: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"{path} cannot be imported")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def build_model(contract: str, tree: str, model_file: str, checkpoint: str, device: str) -> Any:
    """The trained model as the scorer would have used it (eval mode)."""
    if contract == "darwin":
        seed = os.path.dirname(os.path.join(tree, model_file))
        sys.path[:0] = [seed, tree]
        module = _import("model", os.path.join(tree, model_file))
        if not callable(getattr(module, "load", None)):
            raise RuntimeError(f"{model_file} has no load(path, device)")
        model = module.load(checkpoint, device)
    else:
        adapter = _import(
            f"darwin_{contract}_adapter", os.path.join(HERE, f"{contract}_adapter.py")
        )
        model = adapter.load(tree, model_file, checkpoint, device)
    return model


def export(model: Any, context: int, device: str, archive: str) -> None:
    """Write ``torch.export`` of ``model`` at ``[1, context]`` to ``archive``."""
    import torch

    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"load() returned {type(model).__name__}, not a torch.nn.Module")

    class Logits(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, idx: torch.Tensor) -> torch.Tensor:
            out = self.inner(idx)
            return out[0] if isinstance(out, (tuple, list)) else out

    wrapped = Logits(model).eval()
    idx = torch.zeros(1, context, dtype=torch.long, device=device)
    with torch.no_grad():
        wrapped(idx)  # a nanoGPT adapter decides here how it gets full-length logits
        program = torch.export.export(wrapped, (idx,), strict=False)
    program = program.run_decompositions({})  # functional: no in-place writes, no aliasing
    torch.export.save(program, archive)


def main(argv: list[str]) -> None:
    split = argv.index("--") if "--" in argv else len(argv)
    parser = argparse.ArgumentParser(prog="export_worker.py")
    for flag in ("--contract", "--model-file", "--tree", "--checkpoint", "--archive", "--device"):
        parser.add_argument(flag, required=True)
    parser.add_argument("--context", type=int, required=True)
    args = parser.parse_args(argv[:split])
    script = argv[split + 1 :]
    if not script:
        sys.exit("export_worker.py: no training script after --")
    run_script(script[0], script[1:])
    sys.stdout.flush()
    if not os.path.isfile(args.checkpoint):
        return  # the harness reports the missing output
    try:
        start = time.monotonic()
        model = build_model(args.contract, args.tree, args.model_file, args.checkpoint, args.device)
        export(model, args.context, args.device, args.archive)
        print(f"export_worker: exported in {time.monotonic() - start:.1f} s", file=sys.stderr)
    except (Exception, SystemExit) as exc:  # any failure is the model's, told to its author
        last = traceback.format_exception_only(type(exc), exc)[-1].strip()
        with open(args.archive + ".error", "w", encoding="utf-8") as f:
            f.write(last[:2000])
        print(f"export_worker: the model could not be exported: {last}", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])
