"""Static validation of edited files."""

from __future__ import annotations

from pathlib import Path

import pytest

from darwin_bot.errors import MutationRejected
from darwin_bot.mutation import validate_files


def _check(repo_root: Path, file: str, old: str, new: str, **kw: object) -> None:
    files = {f"seed/{p.name}": p.read_text() for p in sorted((repo_root / "seed").glob("*.py"))}
    text = files[file]
    assert old in text
    validate_files(
        files,
        {file: text.replace(old, new, 1)},
        evolvable=kw.get("evolvable", ("seed/",)),  # type: ignore[arg-type]
        allowed_imports=("math", "torch", "os"),
        max_file_lines=int(kw.get("max_lines", 800)),
    )  # type: ignore[call-overload]


@pytest.mark.parametrize(
    ("file", "old", "new", "reason"),
    [
        (
            "seed/model.py",
            "def load(path, device):",
            "def load(path):",
            "load\\(\\) is called elsewhere",
        ),
        (
            "seed/model.py",
            "class MLP(nn.Module):",
            "class FeedForward(nn.Module):",
            "class MLP was removed",
        ),
        (
            "seed/model.py",
            "    def configure_optimizers(",
            "    def make_optim(",
            "GPT.configure_optimizers was removed",
        ),
        (
            "seed/train.py",
            "def get_lr(it, progress):",
            "def get_lr(it, progress, extra):",
            "new required parameter",
        ),
        ("seed/model.py", "import math\n", "import math\nimport scipy\n", "new import 'scipy'"),
        (
            "seed/model.py",
            "import math\n",
            "import math\nimport subprocess\n",
            "import of 'subprocess' is not allowed",
        ),
        (
            "seed/model.py",
            "        super().__init__()\n",
            "        super().__init__()\n        os.system('ls')\n",
            "os.system",
        ),
        (
            "seed/model.py",
            "        super().__init__()\n",
            "        super().__init__()\n        eval('1')\n",
            "eval\\(\\) is not allowed",
        ),
        (
            "seed/model.py",
            "        super().__init__()\n",
            "        super().__init__()\n        open('/etc/x', 'w')\n",
            "absolute path",
        ),
        (
            "seed/model.py",
            "        super().__init__()\n",
            "        super().__init__()\n        __import__('socket')\n",
            "__import__",
        ),
        ("seed/model.py", "def load(path, device):", "def load(path, device) oops:", "SyntaxError"),
    ],
)
def test_rejections(repo_root: Path, file: str, old: str, new: str, reason: str) -> None:
    with pytest.raises(MutationRejected, match=reason):
        _check(repo_root, file, old, new)


def test_accepts_compatible_edits(repo_root: Path) -> None:
    _check(
        repo_root,
        "seed/model.py",
        "def load(path, device):",
        "def load(path, device, strict=True):",
    )
    _check(
        repo_root,
        "seed/model.py",
        "import math\n",
        "import math\nimport torch.nn.functional as F2\n",
    )
    _check(
        repo_root,
        "seed/model.py",
        "        super().__init__()\n",
        "        super().__init__()\n        open('rel.txt', 'w')\n",
    )


def test_file_length_and_paths(repo_root: Path) -> None:
    with pytest.raises(MutationRejected, match="over the limit of 50"):
        _check(repo_root, "seed/model.py", "import math\n", "import math\n", max_lines=50)
    with pytest.raises(MutationRejected, match="outside the evolvable paths"):
        validate_files(
            {}, {"README.md": "x"}, evolvable=("seed/",), allowed_imports=(), max_file_lines=10
        )
    with pytest.raises(MutationRejected, match="outside the evolvable paths"):
        validate_files(
            {}, {"seed/../x.py": "x"}, evolvable=("seed/",), allowed_imports=(), max_file_lines=10
        )
