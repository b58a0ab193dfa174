"""Scoring worker: runs the agent's exported graph on the windows, in a sandbox with no agent code.

Run by file path (standard library, numpy and torch only, never darwin_bot),
with its siblings ``graph_archive.py`` (the safe reader and the op allowlist)
and ``score_worker.py`` (the weight count) loaded by path. Nothing the agent
wrote is imported or unpickled: the graph is read as JSON, each node's operator
is looked up among the allowed ATen operators by name, the weights are raw bytes
viewed as tensors, and the graph is interpreted node by node. The graph takes
one window ``[1, T]`` at a time, so no window's logits can depend on another's.

The worker starts, imports torch, and then waits for its job: one line of JSON
on stdin from the trusted side (``score_run.py``), naming the graph, the
checkpoint, the inputs and, for a learning curve, the checkpoints and their
inputs, all in its read-only folder. The trusted side may start it while the
agent still trains and fill the folder only when training has ended; nothing in
the folder is read before the line comes. End of file instead: nothing to score.

Protocol on the original stdout (the trusted side reads it, see ``scoring.py``):
``b"NPAR"`` and two uint64 (the weights' elements, and those of tensors with 2
or more dimensions, counted from the checkpoint); then per input row one frame
``b"DLGT"``, ``uint32 ndim``, ``ndim x uint32 dims`` and the logits as
little-endian float32. A graph the reader refuses exits with code 3 and the
reason on stderr. With ``weights`` in the job (a learning curve's checkpoints,
see ``curve_weights.py``) the frames of ``curve_inputs`` follow, once per
checkpoint, in order, with the graph's weights replaced by the checkpoint's; a checkpoint that does not fit
sends ``b"UNFT"``, ``uint32 n`` and n bytes of UTF-8 reason instead.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import struct
import sys
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
REJECTED_EXIT = 3
# torch._export.serde.schema's ScalarType and MemoryFormat codes, by the torch attribute they
# name: importing torch's own tables (torch._export.serde) pulls in dynamo, a second or more
# of every scoring run's start (tests/evaluate/test_graph_archive.py holds the two alike)
SCALAR_TYPES = (
    dict(
        enumerate(
            ["uint8", "int8", "int16", "int32", "int64", "float16", "float32", "float64"]
            + ["complex32", "complex64", "complex128", "bool", "bfloat16"],
            start=1,
        )
    )
    | dict(enumerate(["uint16", "float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz"], start=28))
    | {32: "float8_e5m2fnuz", 33: "float8_e8m0fnu", 34: "uint32", 35: "uint64"}
)
CONST, TENSOR, TENSORS = 0, 1, 2  # how a node's argument is found at a call
MEMORY_FORMATS = {
    1: "contiguous_format",
    2: "channels_last",
    3: "channels_last_3d",
    4: "preserve_format",
}


def _sibling(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(
        f"darwin_{name}", os.path.join(HERE, f"{name}.py")
    )
    if spec is None or spec.loader is None:
        sys.exit(f"graph_worker: {name}.py is missing")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


class Program:
    """The checked graph with its weights as tensors on ``device``, callable on one window."""

    def __init__(self, archive: Any, graph: Any, path: str, device: str) -> None:
        import zipfile

        import torch

        self.torch, self.device = torch, torch.device(device)
        self.dtypes = {k: getattr(torch, v) for k, v in SCALAR_TYPES.items() if hasattr(torch, v)}
        self.formats = {k: getattr(torch, v) for k, v in MEMORY_FORMATS.items()}
        storages: dict[str, Any] = {}
        self.weights: dict[str, Any] = {}
        with zipfile.ZipFile(path) as zf:
            for key, w in graph.weights.items():
                if w.file not in storages:
                    raw = bytearray(zf.read(w.file))
                    storages[w.file] = raw
                flat = (
                    torch.frombuffer(storages[w.file], dtype=self.dtypes[w.dtype])
                    if storages[w.file]
                    else torch.empty(0, dtype=self.dtypes[w.dtype])
                )
                view = torch.as_strided(flat, w.sizes, w.strides, w.offset)
                self.weights[key] = view.to(self.device).clone()
        self.graph = graph
        # each node's operator and arguments resolved once: a call only looks tensors up
        self.steps = [self._step(n) for n in graph.nodes]

    def _op(self, target: str) -> Any:
        _, _, _, name, overload = target.split(".")
        return getattr(getattr(self.torch.ops.aten, name), overload)

    def _step(self, node: dict[str, Any]) -> tuple[Any, list[Any], dict[str, Any], list[Any]]:
        """(operator, positional args, keyword args, outputs), each argument as
        ``(CONST, value)``, ``(TENSOR, name)`` or ``(TENSORS, [name or None, ...])``."""
        args, kwargs = [], {}
        for item in node.get("inputs", []):
            if item.get("kind") == 2:
                kwargs[item["name"]] = self._arg(item["arg"])
            else:
                args.append(self._arg(item["arg"]))
        outputs = node.get("outputs", [])
        outs = []
        for i, out in enumerate(outputs):
            ((kind, value),) = out.items()
            at = i if len(outputs) > 1 else None
            if kind == "as_tensor":
                outs.append((at, None, value["name"]))
            elif kind == "as_tensors":
                outs.extend((at, j, v["name"]) for j, v in enumerate(value))
        return self._op(node["target"]), args, kwargs, outs

    def _arg(self, arg: dict[str, Any]) -> tuple[int, Any]:
        ((kind, value),) = arg.items()
        if kind == "as_tensor":
            return TENSOR, value["name"]
        if kind == "as_tensors":
            return TENSORS, [v["name"] for v in value]
        if kind == "as_optional_tensors":
            return TENSORS, [v["as_tensor"]["name"] if "as_tensor" in v else None for v in value]
        if kind == "as_none":
            return CONST, None
        if kind == "as_scalar_type":
            return CONST, self.dtypes[value]
        if kind == "as_memory_format":
            return CONST, self.formats[value]
        if kind == "as_layout":
            return CONST, self.torch.strided
        if kind == "as_device":
            return CONST, self.device
        if kind == "as_float":  # the serialiser writes nan and the infinities as strings
            return CONST, float(value)
        if kind == "as_floats":
            return CONST, [float(v) for v in value]
        return CONST, value

    def __call__(self, idx: Any) -> Any:
        env: dict[str | None, Any] = {None: None}
        for name, key in self.graph.inputs:
            env[name] = idx if key == "user" else self.weights[key]

        def value(arg: tuple[int, Any]) -> Any:
            kind, v = arg
            if kind == TENSOR:
                return env[v]
            return [env[n] for n in v] if kind == TENSORS else v

        for op, args, kwargs, outs in self.steps:
            result = op(*[value(a) for a in args], **{k: value(a) for k, a in kwargs.items()})
            for i, j, name in outs:
                got = result if i is None else result[i]
                env[name] = got if j is None else got[j]
        return env[self.graph.output]


def refuse_mutable(archive: Any, targets: list[str]) -> None:
    """Refuse an operator whose schema writes into an argument, whatever its overload is
    called: the weights stay from window to window, so a write would be state."""
    import torch

    for target in dict.fromkeys(targets):
        _, _, _, name, overload = target.split(".")
        op = getattr(getattr(torch.ops.aten, name, None), overload, None)
        if op is None:
            raise archive.ArchiveRejected(f"the exported graph calls {target}, which torch lacks")
        if op._schema.is_mutable:
            raise archive.ArchiveRejected(
                f"the exported graph calls {target}, which writes into its arguments; "
                "the scored model must be a pure function (no out= or in-place operators)"
            )


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="graph_worker.py")
    parser.add_argument("--context", type=int, required=True)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    frames = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)

    archive = _sibling("graph_archive")
    counter, fit = _sibling("score_worker"), _sibling("curve_weights")
    import numpy as np
    import torch

    # One window at a time is too small to share between threads: more only adds contention.
    torch.set_num_threads(int(os.environ.get("DARWIN_THREADS") or 1))
    # Started up: wait for the job. The folder it names is filled by the trusted side just
    # before it sends the line; nothing in it is read before.
    line = sys.stdin.readline()
    if not line.strip():
        return  # no job: the evaluation ended before scoring
    job = json.loads(line)
    try:
        graph = archive.read_archive(job["archive"], args.context)
        refuse_mutable(archive, graph.ops)
    except archive.ArchiveRejected as exc:
        print(f"graph_worker: {exc}", file=sys.stderr)
        sys.exit(REJECTED_EXIT)
    params, matrix = 0, 0
    if job.get("checkpoint"):
        params, matrix = counter.count_weights(job["checkpoint"], job.get("checkpoint_key", ""))
    program = Program(archive, graph, job["archive"], args.device)
    frames.write(b"NPAR" + struct.pack("<QQ", params, matrix))
    _send(program, np.load(job["inputs"], allow_pickle=False), frames)
    if job.get("weights"):
        curve_inputs = np.load(job["curve_inputs"], allow_pickle=False)
        _send_curve(program, fit, curve_inputs, frames, job["weights"])
    frames.close()


def _send_curve(program: Program, fit: Any, inputs: Any, frames: Any, paths: list[str]) -> None:
    """The windows once per checkpoint, with its weights in the graph (or why they do not fit)."""
    final = program.weights
    for path in paths:
        try:
            program.weights = fit.load(path, final)
        except fit.Unfit as exc:
            why = str(exc).encode("utf-8")[:2000]
            frames.write(b"UNFT" + struct.pack("<I", len(why)) + why)
            continue
        frames.write(b"NPAR" + struct.pack("<QQ", 0, 0))
        _send(program, inputs, frames)


def _send(program: Program, inputs: Any, frames: Any) -> None:
    """One frame of logits per input row, in order."""
    import numpy as np
    import torch

    with torch.inference_mode():
        for row in inputs:
            idx = torch.from_numpy(np.ascontiguousarray(row[None, :])).to(program.device)
            out = program(idx)
            if not isinstance(out, torch.Tensor):
                sys.exit(f"graph_worker: the graph returned {type(out).__name__}, not a tensor")
            arr = out.detach().to("cpu", torch.float32).contiguous().numpy()
            frames.write(b"DLGT" + struct.pack(f"<I{arr.ndim}I", arr.ndim, *arr.shape))
            frames.write(arr.astype("<f4", copy=False).tobytes())


if __name__ == "__main__":
    main(sys.argv[1:])
