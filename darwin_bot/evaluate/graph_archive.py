"""Read an exported model (a ``torch.export`` ``.pt2`` archive) without running anything in it.

The archive is written inside the training sandbox, so every byte of it is the
agent's. ``torch.export.load`` would unpickle parts of it (weights or constants
marked ``use_pickle``, with ``weights_only=False``; the sample inputs), evaluate
symbolic-shape strings with ``sympy.sympify`` (``eval``), and resolve any
``torch.*`` attribute path named as a call target. None of that happens here:
this module uses only ``zipfile``, ``json`` and arithmetic. It reads

* ``models/<name>.json``: the graph, checked node by node against
  :data:`ALLOWED_OPS` (pure ATen operators: no I/O, no randomness, no in-place
  writes, no custom or higher-order operators), and with exactly one input, the
  token ids ``[1, T]`` int64, and one output;
* ``data/weights/model_weights_config.json`` and the raw weight files: each
  tensor's dtype, shape, strides and offset, checked against the bytes its file
  holds (a view may not reach past its storage). A weight stored as a pickle is
  refused, never loaded.

It imports no torch, so the trusted harness can check an archive before it
starts the scoring sandbox, and ``graph_worker.py`` (loaded by path there) uses
the same code. Every refusal is an :class:`ArchiveRejected` whose message tells
the author what to change.
"""

from __future__ import annotations

import json
import math
import zipfile
from dataclasses import dataclass, field
from typing import Any

MAX_JSON_BYTES = 64 * 1024 * 1024
MAX_WEIGHT_BYTES = 16 * 1024**3
MAX_NODES = 200_000
# torch._export.serde.schema.ScalarType -> (name, bytes per element); the dtypes a weight may have
DTYPES: dict[int, tuple[str, int]] = {
    1: ("uint8", 1),
    2: ("int8", 1),
    3: ("int16", 2),
    4: ("int32", 4),
    5: ("int64", 8),
    6: ("float16", 2),
    7: ("float32", 4),
    8: ("float64", 8),
    12: ("bool", 1),
    13: ("bfloat16", 2),
}
STRIDED = 7  # torch._export.serde.schema.Layout.Strided
# Argument kinds the scorer can rebuild as plain values (no symbolic shapes, objects, graphs).
ARG_KINDS = frozenset(
    {
        "as_none",
        "as_tensor",
        "as_tensors",
        "as_optional_tensors",
        "as_int",
        "as_ints",
        "as_float",
        "as_floats",
        "as_bool",
        "as_bools",
        "as_string",
        "as_strings",
        "as_scalar_type",
        "as_memory_format",
        "as_layout",
        "as_device",
    }
)

# Pure ATen operators: the output is a function of the inputs alone, nothing is read
# or written outside the tensors, nothing random. Reviewed one by one; anything else
# (in-place ``*_``, ``out=`` overloads, ``empty*`` (uninitialised memory), ``rand*``,
# ``bernoulli``, ``native_dropout``, custom namespaces, higher-order operators such as
# ``cond``/``while_loop``/``wrap_with_set_grad_enabled``, ``_operator.*``) is refused.
_PURE = """
abs acos add addcdiv addcmul addmm alias amax amin any all arange argmax argmin as_strided asin
atan atan2 avg_pool1d baddbmm bitwise_and bitwise_not bitwise_or bmm cat ceil chunk clamp
clamp_max clamp_min clone constant_pad_nd contiguous conv1d conv2d convolution copy cos cosh
cumsum detach diagonal div elu embedding eq erf exp expand expand_as expm1 fill flatten flip
floor fmod full full_like gather ge gelu glu group_norm gt hardtanh index index_select isinf
isnan layer_norm le leaky_relu lerp lift_fresh_copy linear log log1p log2 log_softmax
logical_and logical_not logical_or logsumexp lt masked_fill matmul max maximum mean min minimum
mm mul native_group_norm native_layer_norm ne neg new_full new_ones new_zeros norm ones
ones_like outer permute pow prod reciprocal relu remainder repeat repeat_interleave reshape rms_norm
roll round rsqrt rsub scalar_tensor scaled_dot_product_attention select sigmoid sign silu sin
sinh slice softmax softplus split split_with_sizes sqrt square squeeze stack std sub sum t tanh
topk transpose tril triu type_as unbind unflatten unsqueeze var view view_as where zeros
zeros_like _log_softmax _softmax _to_copy _unsafe_view to sort cumprod
_scaled_dot_product_flash_attention_for_cpu _assert_tensor_metadata index_put one_hot scatter
scatter_add index_add ger einsum
"""
ALLOWED_OPS = frozenset(_PURE.split())
# Overloads that write into an argument or into a named output buffer.
_BAD_OVERLOADS = ("out", "_out")
# Overloads of allowed operators that write into an argument (``(a!)`` in their schema)
# though their names do not end in "out": a graph could pass one of its own weights as
# the output, and the worker keeps its weights from one window to the next, so the graph
# would remember the windows and probes it saw. tests/evaluate/test_graph_archive.py
# holds this list complete against torch's schemas; graph_worker.py refuses any
# operator whose schema mutates, whatever its name.
_MUTABLE_OVERLOADS = frozenset(
    {
        "max.dim_max",
        "min.dim_min",
        "div.out_mode",
        "topk.values",
        "sort.values",
        "sort.values_stable",
    }
    | {f"sort.{kind}" for kind in ("int", "float", "Tensor", "bool", "str", "any")}
)
# Arguments that would make an allowed operator random: each must be off.
_NO_RANDOM = {"dropout_p": ("as_float", 0.0), "train": ("as_bool", False)}


class ArchiveRejected(Exception):
    """The exported model cannot be scored; the message says what to change."""


@dataclass(frozen=True)
class Weight:
    """One tensor the graph reads: where its bytes are and how to view them."""

    file: str  # member of the archive holding the raw bytes
    dtype: int  # a key of DTYPES
    sizes: tuple[int, ...]
    strides: tuple[int, ...]
    offset: int


@dataclass
class Graph:
    """A checked graph: nodes in order, its weights, its one input and one output."""

    nodes: list[dict[str, Any]]
    inputs: list[tuple[str, str]]  # (graph input name, "user" or a weight's key)
    output: str
    context: int
    weights: dict[str, Weight] = field(default_factory=dict)
    storage: dict[str, int] = field(default_factory=dict)  # file -> bytes

    @property
    def ops(self) -> list[str]:
        return [n["target"] for n in self.nodes]


def op_name(target: str) -> str | None:
    """``torch.ops.aten.<name>.<overload>`` -> ``name`` when the operator is allowed."""
    parts = target.split(".")
    if len(parts) != 5 or parts[:3] != ["torch", "ops", "aten"]:
        return None
    name, overload = parts[3], parts[4]
    if name not in ALLOWED_OPS or overload.endswith(_BAD_OVERLOADS) or name.endswith("_"):
        return None
    if f"{name}.{overload}" in _MUTABLE_OVERLOADS:
        return None
    return name


def _json(zf: zipfile.ZipFile, member: str) -> Any:
    info = zf.getinfo(member)
    if info.file_size > MAX_JSON_BYTES:
        raise ArchiveRejected(f"{member} is {info.file_size} bytes; the graph is too large")
    try:
        return json.loads(zf.read(member))
    except ValueError as exc:
        raise ArchiveRejected(f"{member} is not valid JSON ({exc})") from exc


def read_archive(path: str, context: int) -> Graph:
    """The checked graph of the archive at ``path``, exported at ``[1, context]``."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
            models = [
                n for n in names if n.count("/") == 2 and "/models/" in n and n.endswith(".json")
            ]
            if len(models) != 1:
                raise ArchiveRejected(f"the archive holds {len(models)} models; export exactly one")
            root = models[0].split("/")[0]
            program = _json(zf, models[0])
            graph = _graph(program, context)
            _weights(zf, root, graph)
    except (zipfile.BadZipFile, OSError, KeyError) as exc:
        raise ArchiveRejected(f"the exported model is not a readable .pt2 archive ({exc})") from exc
    return graph


def _graph(program: dict[str, Any], context: int) -> Graph:
    try:
        module = program["graph_module"]
        g, sig = module["graph"], module["signature"]
        nodes = g["nodes"]
    except (KeyError, TypeError) as exc:
        raise ArchiveRejected(f"the exported graph lacks {exc}") from exc
    if program.get("range_constraints") or any(
        g.get(k) for k in ("sym_int_values", "sym_bool_values", "sym_float_values")
    ):
        raise ArchiveRejected("the exported graph has symbolic shapes; export at a fixed shape")
    if g.get("custom_obj_values"):
        raise ArchiveRejected("the exported graph holds script objects; use plain tensors")
    if not isinstance(nodes, list) or len(nodes) > MAX_NODES:
        raise ArchiveRejected("the exported graph has no node list, or too many nodes")
    for node in nodes:
        _check_node(node)
    inputs = _inputs(sig, g)
    outs = sig.get("output_specs", [])
    if len(outs) != 1 or "user_output" not in outs[0] or len(g.get("outputs", [])) != 1:
        raise ArchiveRejected(
            "the exported graph must return one tensor, the logits, and mutate no buffer"
        )
    out = g["outputs"][0].get("as_tensor", {}).get("name")
    user = [n for n, kind in inputs if kind == "user"]
    meta = g.get("tensor_values", {}).get(user[0], {})
    shape = [s.get("as_int") for s in meta.get("sizes", [])]
    if shape != [1, context] or meta.get("dtype") != 5:
        raise ArchiveRejected(
            f"the exported graph takes {shape} (dtype {meta.get('dtype')}); it must take the "
            f"token ids [1, {context}] int64 (the scoring shape)"
        )
    return Graph(nodes, inputs, str(out), context)


def _inputs(sig: dict[str, Any], g: dict[str, Any]) -> list[tuple[str, str]]:
    inputs: list[tuple[str, str]] = []
    for spec in sig.get("input_specs", []):
        ((kind, body),) = spec.items()
        if kind == "user_input":
            inputs.append((body["arg"]["as_tensor"]["name"], "user"))
        elif kind in ("parameter", "buffer", "tensor_constant"):
            key = (
                body.get("parameter_name")
                or body.get("buffer_name")
                or body.get("tensor_constant_name")
            )
            inputs.append((body["arg"]["name"], str(key)))
        else:
            raise ArchiveRejected(
                f"the exported graph has an input of kind {kind!r}; only "
                "tensors (token ids, parameters, buffers, constants) are scored"
            )
    if sum(kind == "user" for _, kind in inputs) != 1:
        raise ArchiveRejected("the exported graph must take exactly one input, the token ids")
    return inputs


def _check_node(node: dict[str, Any]) -> None:
    target = str(node.get("target", ""))
    if op_name(target) is None:
        raise ArchiveRejected(
            f"the exported graph calls {target}, which the scorer does not run (only pure "
            "ATen operators: no custom ops, no I/O, no randomness, no in-place writes, no "
            "control-flow operators); write forward() with standard torch operations"
        )
    for item in node.get("inputs", []):
        if not isinstance(item.get("name"), str):  # torch writes every one's name
            raise ArchiveRejected(
                f"{target} takes an argument without a name; export with torch.export"
            )  # an unnamed dropout_p would pass the randomness check below as a position
        arg = item.get("arg", {})
        if len(arg) != 1 or next(iter(arg)) not in ARG_KINDS:
            raise ArchiveRejected(
                f"{target} takes an argument of kind {list(arg)}; export at "
                "a fixed shape with plain tensors and numbers"
            )
        off = _NO_RANDOM.get(item.get("name"))
        if off is not None and not ("as_none" in arg or arg.get(off[0]) == off[1]):
            raise ArchiveRejected(
                f"{target} is random ({item.get('name')}={arg}); the scored "
                "model must be deterministic (eval mode, no dropout)"
            )
    for out in node.get("outputs", []):
        if len(out) != 1 or next(iter(out)) not in ("as_tensor", "as_tensors", "as_none"):
            raise ArchiveRejected(f"{target} returns {list(out)}; only tensors are scored")


def _weights(zf: zipfile.ZipFile, root: str, graph: Graph) -> None:
    prefix = f"{root}/data/weights/"
    config = {}
    if f"{prefix}model_weights_config.json" in zf.namelist():
        config.update(_json(zf, f"{prefix}model_weights_config.json").get("config", {}))
    cprefix = f"{root}/data/constants/"
    if f"{cprefix}model_constants_config.json" in zf.namelist():
        consts = _json(zf, f"{cprefix}model_constants_config.json").get("config", {})
        config.update({k: {**v, "_dir": cprefix} for k, v in consts.items()})
    total = 0
    for _, key in graph.inputs:
        if key == "user":
            continue
        meta = config.get(key)
        if meta is None:
            raise ArchiveRejected(
                f"the exported graph reads {key!r}, which the archive does not hold"
            )
        if meta.get("use_pickle") or not meta.get("tensor_meta"):
            raise ArchiveRejected(
                f"{key} is stored as a pickle; the scorer reads only raw tensors "
                "(keep weights as plain dense tensors)"
            )
        member = meta.get("_dir", prefix) + str(meta["path_name"])
        nbytes = zf.getinfo(member).file_size
        w = _weight(key, member, meta["tensor_meta"], nbytes)
        graph.weights[key] = w
        if member not in graph.storage:
            graph.storage[member] = nbytes
            total += nbytes
    if total > MAX_WEIGHT_BYTES:
        raise ArchiveRejected(f"the exported weights are {total} bytes, over the limit")


def _weight(key: str, member: str, meta: dict[str, Any], nbytes: int) -> Weight:
    def ints(values: list[dict[str, Any]]) -> tuple[int, ...]:
        out = tuple(v.get("as_int") for v in values)
        if not all(isinstance(i, int) and i >= 0 for i in out):
            raise ArchiveRejected(f"{key} has a symbolic or negative size or stride")
        return out

    dtype = meta.get("dtype")
    if dtype not in DTYPES or meta.get("layout") != STRIDED:
        raise ArchiveRejected(
            f"{key} has dtype {dtype} / layout {meta.get('layout')}; "
            "use dense float, int or bool tensors"
        )
    sizes, strides = ints(meta.get("sizes", [])), ints(meta.get("strides", []))
    offset = meta.get("storage_offset", {}).get("as_int")
    if len(sizes) != len(strides) or not isinstance(offset, int) or offset < 0:
        raise ArchiveRejected(f"{key} has a malformed shape")
    item = DTYPES[dtype][1]
    last = offset + sum((s - 1) * st for s, st in zip(sizes, strides, strict=True))
    if math.prod(sizes) and (last + 1) * item > nbytes:
        raise ArchiveRejected(f"{key} views past the end of its storage ({nbytes} bytes)")
    return Weight(member, dtype, sizes, strides, offset)
