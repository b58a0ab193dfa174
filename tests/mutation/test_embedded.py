"""The validator refuses embedded data, decoder back doors and page-cache calls; honest code passes."""

from __future__ import annotations

import ast
import random
from pathlib import Path

import pytest

from darwin_bot.errors import MutationRejected
from darwin_bot.llm.offline import imported_names, proposals
from darwin_bot.mutation import validate, validate_files
from darwin_bot.mutation.chunks import chunk_source, replace_chunk
from darwin_bot.mutation.embedded import findings

PROGRAMS = Path(__file__).resolve().parents[1] / "evaluate" / "programs"


def _seed(repo_root: Path) -> dict[str, str]:
    return {f"seed/{p.name}": p.read_text() for p in sorted((repo_root / "seed").glob("*.py"))}


def _validate(old: dict[str, str], path: str, text: str) -> None:
    validate_files(
        old,
        {path: text},
        evolvable=("seed/",),
        allowed_imports=("math", "torch", "os", "numpy", "pickle", "sys"),
        max_file_lines=800,
    )


def _edit(repo_root: Path, added: str) -> None:
    """Add ``added`` (top-level code) to seed/model.py and validate the edit."""
    files = _seed(repo_root)
    text = files["seed/model.py"]
    _validate(files, "seed/model.py", text + "\n\n" + added + "\n")


LONG = "x" * 300
WINDOWS = "\n".join(
    f"P{i} = 'First Citizen: before we proceed any further, hear me. {i:03d}'" for i in range(80)
)
HOSTILE = [
    ("S = " + repr("a" * 49_000), "49000-character text literal"),
    ("S = (" + " ".join(repr("ab" * 40) for _ in range(5)) + ")", "400-character text literal"),
    ("S = b'" + "\\x01" * 300 + "'", "300-character text literal"),
    (f"S = f'{{0}}{LONG}'", "text literal"),
    (f"S = 'a' * 2 + '{LONG}' + 'b'", "text literal"),
    ("def f():\n    '''" + "d" * 3000 + "'''", "3000-character docstring"),
    (
        "\n".join(f"def f{i}():\n    '''{'d' * 1000}'''" for i in range(4)),
        "characters of docstrings in one file",
    ),
    (WINDOWS, "characters of literal text in one file"),
    ("T = [" + ", ".join(str(i % 65) for i in range(100)) + "]", "table of 100 constants"),
    (
        "T = {i: 0 for i in range(3)}\nU = ((1, 2),) * 2 + ("
        + ", ".join("0.5" for _ in range(70))
        + ",)",
        "table of 70",
    ),
    (
        "\n".join(f"T{i} = (" + ", ".join("1" for _ in range(60)) + ",)" for i in range(9)),
        "constants in tables in one file",
    ),
    (
        "import pickle\nX = pickle.codecs.decode('uryyb', 'rot13')",
        "codecs reached through an attribute",
    ),
    ("import base64\nX = base64.b64decode('eJw=')", "import of 'base64'"),
    ("import zlib", "import of 'zlib'"),
    ("from lzma import decompress", "import of 'lzma'"),
    ("import marshal", "import of 'marshal'"),
    ("import mmap", "import of 'mmap'"),
    ("import importlib", "import of 'importlib'"),
    ("X = __import__", "__import__ loads modules"),
    ("X = __builtins__", "__builtins__ loads modules"),
    ("import sys\nX = sys.modules['zl' + 'ib']", "modules of a module"),
    ("N = 'ut'\nX = getattr(torch, N + 'ils')", "getattr\\(\\) on a module with a computed name"),
    ("X = vars(torch)", "vars\\(\\) on a module"),
    ("X = torch.__dict__", "__dict__ of a module"),
    ("X = getattr(torch, 'posix_fadvise')", "'posix_fadvise' names what the validator refuses"),
    ("X = open('/proc/self/cmdline').read()", "'/proc/self/cmdline' reads"),
    ("import os\nos.posix_fadvise(0, 0, 0, os.POSIX_FADV_DONTNEED)", "posix_fadvise only steers"),
    ("import os\nos.preadv(0, [bytearray(1)], 0, os.RWF_NOWAIT)", "preadv only steers"),
    ("import os\nos.pwritev(1, [b'x'], 0)", "pwritev only steers"),
]


@pytest.mark.parametrize(("added", "reason"), HOSTILE, ids=[r for _, r in HOSTILE])
def test_each_rule_refuses_with_a_reason(repo_root: Path, added: str, reason: str) -> None:
    with pytest.raises(MutationRejected, match=reason) as exc:
        _edit(repo_root, added)
    assert "seed/model.py" in str(exc.value)


def test_reasons_say_what_to_do_instead(repo_root: Path) -> None:
    with pytest.raises(MutationRejected, match="learn it from DARWIN_DATA during training"):
        _edit(repo_root, "S = " + repr("a" * 400))
    with pytest.raises(MutationRejected, match="np.fromfile"):
        _edit(repo_root, "import os\nos.posix_fadvise(0, 0, 0, 4)")
    with pytest.raises(MutationRejected, match="explicit dict"):
        _edit(repo_root, "N = 'a'\nX = getattr(torch, N)")


def test_honest_code_near_the_limits_passes(repo_root: Path) -> None:
    _edit(repo_root, "S = " + repr("a" * 200))
    _edit(repo_root, "T = [" + ", ".join("0.1" for _ in range(60)) + "]")
    _edit(repo_root, "X = getattr(torch.nn.functional, 'gelu')")
    _edit(repo_root, "X = hasattr(torch.nn.functional, 'scaled_dot_product_attention')")
    _edit(repo_root, "def f(cfg, k):\n    return getattr(cfg, k)")  # not a module
    _edit(repo_root, "import numpy as np\nX = np.memmap")


def test_the_embedded_windows_model_passed_the_old_validator_and_is_refused(
    repo_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    honest = (PROGRAMS / "honest" / "seed" / "model.py").read_text()
    hostile = (PROGRAMS / "model_embedded.py").read_text()
    old = {"seed/model.py": honest}
    with monkeypatch.context() as m:
        m.setattr(validate, "check_embedded", lambda *a: None)  # the rules before this check
        _validate(old, "seed/model.py", hostile)
    with pytest.raises(MutationRejected) as exc:
        _validate(old, "seed/model.py", hostile)
    reasons = findings("seed/model.py", ast.parse(hostile))
    assert any("codecs reached through an attribute" in r for r in reasons), reasons
    assert any("characters of literal text in one file" in r for r in reasons), reasons
    assert str(exc.value) in reasons


def test_what_the_original_already_held_stays_allowed(repo_root: Path) -> None:
    files = _seed(repo_root)
    files["seed/model.py"] += "\nimport zlib\n"
    _validate(files, "seed/model.py", files["seed/model.py"] + "\nX = 1\n")


def _python_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)


def test_the_honest_seed_and_nanogpt_hold_nothing_refused(repo_root: Path) -> None:
    paths = _python_files(repo_root / "seed") + _python_files(
        repo_root / "tests" / "contract" / "nanogpt_layout"
    )
    paths += _python_files(PROGRAMS / "honest")
    assert len(paths) >= 6
    for path in paths:
        assert findings(str(path), ast.parse(path.read_text())) == [], path


def test_every_offline_mutator_edit_holds_nothing_refused(repo_root: Path) -> None:
    seen = 0
    for name in ("model.py", "train.py"):
        text = (repo_root / "seed" / name).read_text()
        chunks = chunk_source(f"seed/{name}", text)
        names = imported_names(chunks[0].text)
        for c in chunks[1:]:
            for k in range(6):
                for e in proposals(c.text, names, random.Random(k)):
                    edited = replace_chunk(text, c, e.text)
                    assert findings(name, ast.parse(edited)) == [], e.tag.kind
                    seen += 1
    assert seen >= 50
