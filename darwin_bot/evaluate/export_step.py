"""The harness's side of exporting: the training command that exports, and the check of its output.

Training runs as ``python export_worker.py ... -- <the contract's argv>``: the
worker runs the training script in its own process, then exports the trained
model as a ``torch.export`` graph at the scoring shape ``[1, T]`` into the
output folder (see ``export_worker.py``). The export runs next to the agent's
code, so nothing vouches for the file: :func:`export_problem` reads it with
:mod:`graph_archive` (no unpickling, no code) and says why it cannot be scored.
"""

from __future__ import annotations

from pathlib import Path

from darwin_bot.evaluate.graph_archive import ArchiveRejected, Graph, read_archive

WORKER = Path(__file__).with_name("export_worker.py")
GRAPH_FILE = "darwin-graph.pt2"
EXPORT_HINT = (
    "the scorer runs forward(idx) as a torch.export graph at the scoring shape [1, {T}] "
    "(ATen operators only): keep forward free of data-dependent Python control flow, "
    "side effects, state kept between calls and calls outside torch"
)


def export_argv(
    backend: str,
    contract: str,
    model_path: str,
    tree: str,
    checkpoint: str,
    out: str,
    context: int,
    device: str,
    argv: tuple[str, ...],
) -> list[str]:
    """The training command (after ``python``): the worker, its options, then ``argv``."""
    worker = f"/sandbox/darwin/{WORKER.name}" if backend == "bwrap" else str(WORKER)
    return [
        worker,
        "--contract",
        contract,
        "--model-file",
        model_path,
        "--tree",
        tree,
        "--checkpoint",
        checkpoint,
        "--archive",
        f"{out}/{GRAPH_FILE}",
        "--context",
        str(context),
        "--device",
        device,
        "--",
        *argv,
    ]


def export_problem(out: Path, context: int) -> tuple[Graph | None, str]:
    """(the checked graph, "") or (None, why the model cannot be scored)."""
    archive = out / GRAPH_FILE
    if not archive.is_file() or archive.is_symlink():
        error = out / f"{GRAPH_FILE}.error"
        why = ""
        if error.is_file() and not error.is_symlink():
            why = error.read_text(encoding="utf-8", errors="replace")[:500].strip()
        return None, (
            "the model cannot be exported as a graph"
            + (f" ({why})" if why else "")
            + "; "
            + EXPORT_HINT.format(T=context)
        )
    try:
        return read_archive(str(archive), context), ""
    except ArchiveRejected as exc:
        return None, f"the exported graph cannot be scored: {exc}"
