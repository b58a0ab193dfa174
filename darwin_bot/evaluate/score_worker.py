"""Scoring worker: runs inside the sandbox, next to the agent's code.

It loads the agent's model with ``seed/model.py``'s ``load(path, device)`` and
writes the logits for every input window it is given. It never sees a target:
the trusted side keeps them and computes the loss. It is a script run by file
path (standard library, numpy and torch only, never darwin_bot), because it
shares a process with the agent's code and so is no more trusted than it,
except for what it sends before that code is imported.

Before any of the agent's code is imported, it reads ``--model`` with
``torch.load(weights_only=True)`` (no pickled code runs) and counts the
elements its tensors' storages hold (``storage_count.py``): that count, not anything the agent reports,
is what FLOPs per token are computed from. A file that is not a checkpoint
counts 0 (the MFU is then unavailable, not the run failed).

With ``--gate`` it waits, after importing torch and before reading or running
anything of the agent's, for a line ``go`` on stdin: the harness starts the
second scoring run early, so that its start-up overlaps the first run, but lets
it reach the agent's code only once the first has ended.

Protocol: first ``b"NPAR"``, then two uint64: the weights' elements, and those
of tensors with 2 or more dimensions. Then: the inputs are an ``.npy`` file of
int64 token ids ``[N, T]``, sent in order in batches of ``--batch`` rows. For
each batch one frame goes to the original stdout: ``b"DLGT"``, ``uint32 ndim``, ``ndim x uint32 dims``, then
the logits as little-endian float32 in C order. Anything the agent prints goes
to stderr (fd 1 is pointed there), so it cannot be mistaken for a frame.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import struct
import sys
from typing import Any

MAGIC = b"DLGT"
PARAMS_MAGIC = b"NPAR"
OVERCLAIMED = 2**64 - 1  # the parameter count of a checkpoint whose views claim more than it stores


def count_weights(path: str, key: str = "") -> tuple[int, int]:
    """(elements, elements in storages a tensor of ndim >= 2 views) stored at ``path``.

    Counted from storage bytes by ``storage_count.py`` (loaded by path, like the
    adapters). A checkpoint whose views claim more than they store counts
    ``(OVERCLAIMED, 0)``: the trusted side rejects it (the reason is on stderr).
    ``key``: count only ``obj[key]`` (nanoGPT's ckpt.pt also holds the optimizer's moments).
    """
    import torch

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # not a checkpoint: nothing to vouch for
        return 0, 0
    if key:
        obj = obj.get(key) if isinstance(obj, dict) else None
    counter = _sibling("storage_count")
    count = counter.count_storage(counter.tensors_in(obj))
    if count.problem:
        print(f"score_worker: {count.problem}", file=sys.stderr)
        return OVERCLAIMED, 0
    return count.params, count.matrix_params


def _sibling(name: str) -> Any:
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"darwin_{name}", path)
    if spec is None or spec.loader is None:
        sys.exit(f"score_worker: {name}.py is missing next to the worker")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="score_worker.py")
    parser.add_argument("--tree", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--inputs", required=True)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--gate", action="store_true", help="wait for 'go' on stdin first")
    # darwin:contract seam: the program contract (darwin_bot/program) and its model file
    parser.add_argument("--contract", default="darwin")
    parser.add_argument("--model-file", default="seed/model.py")
    args = parser.parse_args(argv)

    frames = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # the agent's prints go to the log, never into the frame stream
    sys.stdout = sys.stderr

    import numpy as np
    import torch

    if args.gate and sys.stdin.readline() != "go\n":
        sys.exit(0)  # the other scoring run failed: nothing to do
    darwin = args.contract == "darwin"
    # before any agent code is imported
    params, matrix_params = count_weights(args.model, "" if darwin else "model")
    frames.write(PARAMS_MAGIC + struct.pack("<QQ", params, matrix_params))
    frames.flush()

    if darwin:
        model = _load_darwin(args.tree, args.model, args.device)
    else:  # darwin:contract seam: <contract>_adapter.py builds the model
        model = _adapter(args.contract).load(args.tree, args.model_file, args.model, args.device)
    if not isinstance(model, torch.nn.Module):
        sys.exit(f"score_worker: load() returned {type(model).__name__}, not a torch.nn.Module")

    inputs = np.load(args.inputs, allow_pickle=False)
    with torch.no_grad():
        for start in range(0, len(inputs), args.batch):
            idx = torch.from_numpy(np.ascontiguousarray(inputs[start : start + args.batch]))
            out = model(idx.to(args.device))
            if isinstance(out, (tuple, list)):  # nanoGPT-style (logits, loss)
                out = out[0]
            if not isinstance(out, torch.Tensor):
                sys.exit(f"score_worker: forward returned {type(out).__name__}, not a Tensor")
            arr = out.detach().to("cpu", torch.float32).contiguous().numpy()
            frames.write(MAGIC + struct.pack(f"<I{arr.ndim}I", arr.ndim, *arr.shape))
            frames.write(arr.astype("<f4", copy=False).tobytes())
            frames.flush()
    frames.close()


def _load_darwin(tree: str, model_path: str, device: str) -> object:
    seed_dir = os.path.join(tree, "seed")
    sys.path[:0] = [seed_dir, tree]  # model.py may import its siblings
    spec = importlib.util.spec_from_file_location("model", os.path.join(seed_dir, "model.py"))
    if spec is None or spec.loader is None:
        sys.exit("score_worker: seed/model.py cannot be imported")
    module = importlib.util.module_from_spec(spec)
    sys.modules["model"] = module
    spec.loader.exec_module(module)
    if not callable(getattr(module, "load", None)):
        sys.exit("score_worker: seed/model.py has no load(path, device)")
    return module.load(model_path, device)


def _adapter(contract: str) -> Any:
    """darwin:contract seam: ``<contract>_adapter.py`` next to this file, loaded by path
    (before any of the agent's folders is on sys.path, so it cannot be shadowed)."""
    if not contract.isidentifier():
        sys.exit(f"score_worker: bad contract {contract!r}")
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), f"{contract}_adapter.py")
    spec = importlib.util.spec_from_file_location(f"darwin_{contract}_adapter", path)
    if spec is None or spec.loader is None:
        sys.exit(f"score_worker: no adapter for contract {contract!r}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


if __name__ == "__main__":
    main(sys.argv[1:])
