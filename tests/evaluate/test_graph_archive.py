"""The exported graph crosses the trust boundary: it is read as data and run op by op, or refused.

Each archive here is a real ``torch.export`` of a small model, some then edited the
way a hostile training run could edit its own output folder.
"""

from __future__ import annotations

import json
import pickle
import zipfile
from pathlib import Path

import pytest
import torch
from torch import nn

from darwin_bot.evaluate import export_worker, graph_archive, graph_worker
from darwin_bot.evaluate.export_step import GRAPH_FILE, export_problem
from darwin_bot.evaluate.graph_archive import ArchiveRejected, read_archive

T, VOCAB = 16, 11
MARKER = Path("/tmp/darwin-test-booby-trap-ran")


class Tiny(nn.Module):
    """A causal model with the seed's kinds of operators (embedding, attention, MLP)."""

    def __init__(self) -> None:
        super().__init__()
        self.wte, self.wpe = nn.Embedding(VOCAB, 8), nn.Embedding(T, 8)
        self.qkv, self.head = nn.Linear(8, 24), nn.Linear(8, VOCAB)
        self.head.weight = self.wte.weight  # tied, as nanoGPT ties them

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1]))
        q, k, v = self.qkv(x).split(8, dim=2)
        y = nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.head(nn.functional.gelu(x + y))


class Counter(nn.Module):
    """Keeps state between calls in a buffer: what a pure graph may not do."""

    def __init__(self) -> None:
        super().__init__()
        self.table = nn.Embedding(VOCAB, VOCAB)
        self.register_buffer("calls", torch.zeros(1))

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        self.calls.add_(1)
        return self.table(idx) + self.calls


class Noisy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.table = nn.Embedding(VOCAB, VOCAB)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.table(idx) + torch.rand(idx.shape[0], idx.shape[1], VOCAB)


def exported(model: nn.Module, path: Path, context: int = T) -> Path:
    torch.manual_seed(0)
    export_worker.export(model.eval(), context, "cpu", str(path))
    return path


@pytest.fixture(scope="module")
def honest(tmp_path_factory: pytest.TempPathFactory) -> tuple[nn.Module, Path]:
    torch.manual_seed(0)
    model = Tiny().eval()
    return model, exported(model, tmp_path_factory.mktemp("g") / "honest.pt2")


def rewrite(src: Path, dest: Path, edit) -> Path:
    """Copy the archive, letting ``edit(name, bytes) -> bytes | None`` change members."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dest, "w") as zout:
        for info in zin.infolist():
            data = edit(info.filename, zin.read(info.filename))
            zout.writestr(info.filename, data)
    return dest


class Trap:
    def __reduce__(self):
        return (Path.touch, (MARKER,))


def test_the_honest_graph_runs_op_by_op_and_gives_the_models_logits(honest):
    model, path = honest
    graph = read_archive(str(path), T)
    assert graph.context == T and len(graph.storage) == 5  # the tied weight stored once
    program = graph_worker.Program(graph_archive, graph, str(path), "cpu")
    idx = torch.randint(0, VOCAB, (1, T))
    with torch.no_grad():
        assert torch.equal(program(idx), model(idx))


def test_a_pickle_planted_in_the_archive_is_never_unpickled(honest, tmp_path: Path):
    _, path = honest
    MARKER.unlink(missing_ok=True)
    payload = pickle.dumps(Trap())

    def plant(name: str, data: bytes) -> bytes:
        if name.endswith("model_weights_config.json"):
            config = json.loads(data)
            first = next(iter(config["config"].values()))
            first["use_pickle"] = True  # torch.export.load then runs torch.load(weights_only=False)
            return json.dumps(config).encode()
        if "/data/weights/weight_" in name or name.endswith("sample_inputs/model.pt"):
            return payload
        return data

    trapped = rewrite(path, tmp_path / "trapped.pt2", plant)
    with pytest.raises(ArchiveRejected, match="pickle"):
        read_archive(str(trapped), T)
    assert not MARKER.exists(), "the reader ran the planted pickle"
    # the trap is live: torch's own loader runs it
    with pytest.raises(Exception):  # noqa: B017 - what fails after the payload ran does not matter
        torch.export.load(trapped)
    assert MARKER.exists(), "the booby trap did not fire under torch.export.load"
    MARKER.unlink()


def test_strings_torch_would_evaluate_are_refused_unread(honest, tmp_path: Path):
    _, path = honest
    planted = f"__import__('pathlib').Path('{MARKER}').touch()"

    def sympy_range(name: str, data: bytes) -> bytes:
        if name.endswith(".json") and "/models/" in name:
            program = json.loads(data)
            program["range_constraints"] = {planted: {"min_val": 0, "max_val": 4}}
            return json.dumps(program).encode()
        return data

    MARKER.unlink(missing_ok=True)
    with pytest.raises(ArchiveRejected, match="symbolic"):
        read_archive(str(rewrite(path, tmp_path / "sym.pt2", sympy_range)), T)
    assert not MARKER.exists()


@pytest.mark.parametrize(
    "target",
    ["torch.load", "torch.ops.mylib.peek.default", "torch.ops.aten.bernoulli.default",
     "torch.ops.aten.add_.Tensor", "torch.ops.aten.add.out", "torch.ops.higher_order.cond",
     "_operator.getitem", "torch.ops.aten.empty.memory_format"],
)  # fmt: skip
def test_an_operator_off_the_allowlist_is_refused(honest, tmp_path: Path, target: str):
    _, path = honest

    def swap(name: str, data: bytes) -> bytes:
        if name.endswith(".json") and "/models/" in name:
            program = json.loads(data)
            program["graph_module"]["graph"]["nodes"][-1]["target"] = target
            return json.dumps(program).encode()
        return data

    with pytest.raises(ArchiveRejected, match="does not run") as err:
        read_archive(str(rewrite(path, tmp_path / "op.pt2", swap)), T)
    assert target in str(err.value)


def test_state_between_calls_and_randomness_are_refused(tmp_path: Path):
    with pytest.raises(ArchiveRejected, match="mutate no buffer|one tensor"):
        read_archive(str(exported(Counter(), tmp_path / "counter.pt2")), T)
    with pytest.raises(ArchiveRejected, match="does not run"):
        read_archive(str(exported(Noisy(), tmp_path / "noisy.pt2")), T)


def test_a_graph_at_another_shape_or_a_view_past_its_storage_is_refused(honest, tmp_path: Path):
    torch.manual_seed(0)
    with pytest.raises(ArchiveRejected, match=r"\[1, 16\]"):
        read_archive(str(exported(Tiny(), tmp_path / "short.pt2", context=8)), T)
    _, path = honest

    def stretch(name: str, data: bytes) -> bytes:
        if name.endswith("model_weights_config.json"):
            config = json.loads(data)
            meta = next(iter(config["config"].values()))["tensor_meta"]
            meta["sizes"][0]["as_int"] *= 1000
            return json.dumps(config).encode()
        return data

    with pytest.raises(ArchiveRejected, match="past the end"):
        read_archive(str(rewrite(path, tmp_path / "stretch.pt2", stretch)), T)


def test_a_model_that_cannot_be_exported_is_rejected_with_what_to_change(tmp_path: Path):
    class DataDependent(nn.Module):
        def forward(self, idx):
            if idx.sum().item() > 3:  # Python control flow on the data
                return torch.zeros(1, T, VOCAB)
            return torch.ones(1, T, VOCAB)

    out = tmp_path / "out"
    out.mkdir()
    try:
        exported(DataDependent(), out / GRAPH_FILE)
    except Exception as exc:  # what export_worker writes when this happens
        (out / f"{GRAPH_FILE}.error").write_text(str(exc).splitlines()[0])
    graph, why = export_problem(out, T)
    assert graph is None
    assert "cannot be exported" in why and "[1, 16]" in why and "control flow" in why


def test_the_seed_exports_at_the_tiny_scoring_shape(tmp_path: Path, repo_root: Path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("seed_model", repo_root / "seed" / "model.py")
    assert spec is not None and spec.loader is not None
    seed = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(seed)
    torch.manual_seed(0)
    model = seed.GPT(seed.GPTConfig(n_layer=2, n_head=2, n_embd=32, block_size=64, vocab_size=65))
    graph = read_archive(str(exported(model, tmp_path / "seed.pt2", context=64)), 64)
    program = graph_worker.Program(graph_archive, graph, str(tmp_path / "seed.pt2"), "cpu")
    idx = torch.randint(0, 65, (1, 64))
    with torch.no_grad():
        assert torch.equal(program(idx), model.eval()(idx))


def _model_with(repo_root: Path, kind: str, tmp_path: Path):
    """seed/model.py with every chunk the offline edit ``kind`` applies to rewritten by it."""
    import importlib.util
    import random

    from darwin_bot.llm.offline import imported_names, proposals
    from darwin_bot.mutation import chunk_source

    text = (repo_root / "seed" / "model.py").read_text()
    chunks = chunk_source("seed/model.py", text)
    names = imported_names(chunks[0].text)
    applied = False
    for chunk in chunks[1:]:
        for seed in range(8):
            edit = next(
                (
                    e
                    for e in proposals(chunk.text, names, random.Random(seed))
                    if e.tag.kind == kind
                ),
                None,
            )
            if edit is not None:
                text = text.replace(chunk.text, edit.text)
                applied = True
                break
    if not applied:
        return None
    path = tmp_path / f"{kind}.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location(f"seed_{kind}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    "kind",
    ["relu2_mlp", "swiglu_mlp", "rmsnorm", "qk_norm", "rotary", "untie_head",
     "zero_init_head", "logit_softcap", "parallel_block"],
)  # fmt: skip
def test_every_offline_model_edit_exports_and_is_scored(kind: str, tmp_path: Path, repo_root: Path):
    """An edit the offline mutator proposes must be one the scorer can run, or it is wasted."""
    module = _model_with(repo_root, kind, tmp_path)
    assert module is not None, f"{kind} applies to no chunk of seed/model.py"
    torch.manual_seed(0)
    cfg = module.GPTConfig(n_layer=2, n_head=2, n_embd=32, block_size=64, vocab_size=65)
    model = module.GPT(cfg)
    path = exported(model, tmp_path / f"{kind}.pt2", context=64)
    graph = read_archive(str(path), 64)
    program = graph_worker.Program(graph_archive, graph, str(path), "cpu")
    idx = torch.randint(0, 65, (1, 64))
    with torch.no_grad():
        assert torch.allclose(program(idx), model.eval()(idx), atol=1e-5)


def test_the_workers_dtype_and_memory_format_codes_are_torch_exports_own():
    # the worker keeps its own copy of the codes so that it need not import torch._export
    from torch._export.serde.serialize import (
        _SERIALIZE_TO_TORCH_DTYPE,
        _SERIALIZE_TO_TORCH_MEMORY_FORMAT,
    )

    ours = {k: getattr(torch, v) for k, v in graph_worker.SCALAR_TYPES.items()}
    assert ours == {int(k): v for k, v in _SERIALIZE_TO_TORCH_DTYPE.items()}
    formats = {k: getattr(torch, v) for k, v in graph_worker.MEMORY_FORMATS.items()}
    assert formats == {int(k): v for k, v in _SERIALIZE_TO_TORCH_MEMORY_FORMAT.items()}


def _mutable_overloads() -> list[str]:
    """Every overload of an allowed operator whose schema writes into an argument."""
    found = []
    for name in sorted(graph_archive.ALLOWED_OPS):
        packet = getattr(torch.ops.aten, name)
        for overload in packet.overloads():
            if getattr(packet, overload)._schema.is_mutable:
                found.append(f"torch.ops.aten.{name}.{overload}")
    return found


def test_no_overload_that_writes_into_an_argument_passes_the_allowlist():
    # max.dim_max(x, -1, max=weight, ...) would write into a weight the worker keeps between
    # windows: state, though neither the name nor the overload looks like out= or in-place
    mutable = _mutable_overloads()
    assert "torch.ops.aten.max.dim_max" in mutable  # the check sees what it must refuse
    assert [t for t in mutable if graph_archive.op_name(t) is not None] == []


def test_the_worker_refuses_a_mutable_operator_whatever_its_name():
    graph_worker.refuse_mutable(graph_archive, ["torch.ops.aten.max.dim"])
    for target in ("torch.ops.aten.max.dim_max", "torch.ops.aten.topk.values"):
        with pytest.raises(ArchiveRejected, match="writes into its arguments"):
            graph_worker.refuse_mutable(graph_archive, [target])
    with pytest.raises(ArchiveRejected, match="torch lacks"):
        graph_worker.refuse_mutable(graph_archive, ["torch.ops.aten.max.no_such_overload"])


def test_an_argument_without_a_name_is_refused(honest, tmp_path: Path):
    # the randomness check reads dropout_p and train by name: unnamed, a value would pass
    _, path = honest

    def unname(name: str, data: bytes) -> bytes:
        if name.endswith(".json") and "/models/" in name:
            program = json.loads(data)
            for node in program["graph_module"]["graph"]["nodes"]:
                for item in node["inputs"]:
                    item.pop("name", None)
            return json.dumps(program).encode()
        return data

    read_archive(str(path), T)
    with pytest.raises(ArchiveRejected, match="without a name"):
        read_archive(str(rewrite(path, tmp_path / "unnamed.pt2", unname)), T)
