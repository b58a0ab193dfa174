"""Testing helpers: a local smoke test (a few training iterations of a tree on tiny data).

Not used by darwin-bot itself; for tests and benchmarks only: it runs the tree's code in
a plain subprocess, *not* in the sandbox (the evaluator owns the sandboxed
smoke test). It checks what the evaluator will rely on: ``train.py`` exits 0,
writes ``model.pt`` and ``train.json``, and ``model.load(path, device)`` gives
a module whose logits have shape ``[B, T, vocab]`` and are finite.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from darwin_bot.core import Budget, EvalResult, Status

TINY_VOCAB = 16
_CHECK = """
import os, runpy, sys
seed_dir = os.environ["DARWIN_SMOKE_SEED_DIR"]
sys.path.insert(0, seed_dir)
runpy.run_path(os.path.join(seed_dir, "train.py"), run_name="__main__")
import torch
import model
out = os.environ["DARWIN_OUT"]
for name in ("model.pt", "train.json"):
    assert os.path.exists(os.path.join(out, name)), f"train.py did not write {name}"
m = model.load(os.path.join(out, "model.pt"), "cpu")
V = int(os.environ["DARWIN_SMOKE_VOCAB"])
with torch.no_grad():
    logits = m(torch.randint(0, V, (2, 8)))
assert tuple(logits.shape) == (2, 8, V), f"logits have shape {tuple(logits.shape)}, expected (2, 8, {V})"
assert bool(torch.isfinite(logits).all()), "logits are not finite"
print("smoke ok")
"""


def write_tiny_data(out: Path, tokens: int = 20_000, seed: int = 0) -> Path:
    """A tiny random corpus in the seed's format (train.bin uint16 + meta.json)."""
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    # a repeating pattern plus noise, so a couple of steps can lower the loss
    ids = (np.arange(tokens) % TINY_VOCAB + rng.integers(0, 2, tokens)) % TINY_VOCAB
    ids.astype(np.uint16).tofile(out / "train.bin")
    itos = [chr(ord("a") + i) for i in range(TINY_VOCAB)]
    meta = {"vocab_size": TINY_VOCAB, "itos": itos, "stoi": {c: i for i, c in enumerate(itos)}}
    (out / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    return out


def _base_env(home: str) -> dict[str, str]:
    """What a smoke test's Python needs of the host's environment: nothing else passes."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": home,
        "PYTHONDONTWRITEBYTECODE": "1",
        "OMP_NUM_THREADS": "1",
    }


def _contract_env(
    out: str, data_dir: Path, iters: int, seed: int, preset: str, seed_dir: Path, vocab: int
) -> dict[str, str]:
    """The ``DARWIN_*`` variables of one smoke test: the contract's, and what the check reads."""
    return {
        "DARWIN_THREADS": "1",
        "DARWIN_DATA": str(data_dir),
        "DARWIN_OUT": out,
        "DARWIN_MAX_ITERS": str(iters),
        "DARWIN_SEED": str(seed),
        "DARWIN_DEVICE": "cpu",
        "DARWIN_PRESET": preset,
        "DARWIN_SMOKE_SEED_DIR": str(seed_dir),
        "DARWIN_SMOKE_VOCAB": str(vocab),
    }


def _vocab(data_dir: Path) -> int:
    return int(json.loads((Path(data_dir) / "meta.json").read_text())["vocab_size"])


def _result(
    seed: int, iters: int, timeout_s: float, timed_out: bool, rc: int, log: str, errors: str
) -> EvalResult:
    """A smoke test's EvalResult: timeout, failed (the last line of ``errors``) or ok."""

    def made(status: Status, reason: str = "") -> EvalResult:
        budget = Budget(iters=iters)
        return EvalResult(status, reason, None, "cpu", seed, budget, "smoke", "", log_tail=log)

    if timed_out:
        return made(Status.TIMEOUT, f"smoke test ran over {timeout_s:.0f} s")
    if rc != 0:
        last = [ln for ln in errors.strip().splitlines() if ln.strip()]
        return made(Status.FAILED, (last[-1] if last else f"exit code {rc}")[:300])
    return made(Status.OK)


def run_smoke(
    tree: Path,
    data_dir: Path,
    *,
    iters: int = 2,
    timeout_s: float = 120.0,
    seed: int = 0,
    train_path: str = "seed/train.py",
    preset: str = "tiny",
) -> EvalResult:
    """Train ``tree`` for ``iters`` iterations on ``data_dir`` in a subprocess (unsandboxed)."""
    seed_dir = (Path(tree) / train_path).parent.resolve()
    data_dir = Path(data_dir).resolve()
    with tempfile.TemporaryDirectory(prefix="darwin-smoke-") as out:
        env = {
            **_base_env(out),
            **_contract_env(out, data_dir, iters, seed, preset, seed_dir, _vocab(data_dir)),
        }
        try:
            proc = subprocess.run(
                [sys.executable, "-c", _CHECK],
                cwd=out,
                env=env,
                capture_output=True,
                text=True,
                timeout=timeout_s,
                check=False,
                start_new_session=True,
            )
        except subprocess.TimeoutExpired as exc:
            tail = exc.stdout or ""
            tail = tail.decode(errors="replace") if isinstance(tail, bytes) else tail
            return _result(seed, iters, timeout_s, True, -1, tail[-2000:], "")
        log = (proc.stdout + proc.stderr)[-4000:]
        return _result(seed, iters, timeout_s, False, proc.returncode, log, proc.stderr)


# A zygote: imports torch once (and the optimizer machinery that torch imports
# lazily, ~2 s), then forks one child per smoke test. A smoke test drops from
# ~4 s to ~0.3 s, which is what lets a test smoke 50 offspring.
_ZYGOTE = r"""
import json, os, signal, sys, time, traceback
import torch
torch.set_num_threads(1)
import torch._dynamo, torch.optim
torch.optim.AdamW([torch.nn.Parameter(torch.zeros(2))])
import numpy, math, inspect, resource, runpy, dataclasses, collections, contextlib
CHECK = compile(sys.argv[1], "<smoke-check>", "exec")
out_pipe = sys.stdout
for line in sys.stdin:
    req = json.loads(line)
    pid = os.fork()
    if pid == 0:
        os.setsid()
        fd = os.open(req["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(fd, 1); os.dup2(fd, 2)
        null = os.open(os.devnull, os.O_RDONLY); os.dup2(null, 0)
        sys.stdout = os.fdopen(1, "w", buffering=1); sys.stderr = os.fdopen(2, "w", buffering=1)
        os.environ.update(req["env"])
        os.chdir(req["env"]["DARWIN_OUT"])
        code = 0
        try:
            exec(CHECK, {"__name__": "__smoke__"})
        except SystemExit as exc:
            if exc.code not in (None, 0):
                print(exc.code if isinstance(exc.code, str) else f"exit {exc.code}", file=sys.stderr)
                code = 1
        except BaseException:
            traceback.print_exc()
            code = 1
        sys.stdout.flush(); sys.stderr.flush()
        os._exit(code)
    deadline = time.monotonic() + req["timeout"]
    status, timed_out = None, False
    while status is None:
        done, st = os.waitpid(pid, os.WNOHANG)
        if done:
            status = os.waitstatus_to_exitcode(st)
        elif time.monotonic() > deadline:
            os.killpg(pid, signal.SIGKILL)
            status = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
            timed_out = True
        else:
            time.sleep(0.01)
    out_pipe.write(json.dumps({"rc": status, "timed_out": timed_out}) + "\n")
    out_pipe.flush()
"""


class ForkSmoke:
    """A fast :func:`run_smoke`: ``smoke = ForkSmoke(data_dir); smoke(tree) -> EvalResult``.

    One zygote process per instance, one test at a time; close it (or use
    ``with``) when done. Same checks and environment as :func:`run_smoke`;
    ``runs`` counts the smoke tests made (the benchmark's compute ledger).
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        iters: int = 2,
        timeout_s: float = 60.0,
        seed: int = 0,
        preset: str = "tiny",
        train_path: str = "seed/train.py",
    ) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.iters, self.timeout_s, self.seed = iters, timeout_s, seed
        self.preset, self.train_path = preset, train_path
        self.runs = 0
        self.vocab = _vocab(self.data_dir)
        self._tmp = tempfile.TemporaryDirectory(prefix="darwin-smoke-")
        env = _base_env(self._tmp.name)
        self._proc = subprocess.Popen(
            [sys.executable, "-c", _ZYGOTE, _CHECK],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            text=True,
            cwd=self._tmp.name,
        )

    def __call__(self, tree: Path) -> EvalResult:
        self.runs += 1
        out = Path(tempfile.mkdtemp(dir=self._tmp.name))
        log = out.with_suffix(".log")
        seed_dir = (Path(tree) / self.train_path).parent.resolve()
        env = _contract_env(
            str(out), self.data_dir, self.iters, self.seed, self.preset, seed_dir, self.vocab
        )
        req = {"env": env, "log": str(log), "timeout": self.timeout_s}
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write(json.dumps(req) + "\n")
        self._proc.stdin.flush()
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError("the smoke zygote died; see its stderr")
        answer = json.loads(line)
        text = log.read_text(errors="replace") if log.exists() else ""
        timed_out, rc = bool(answer["timed_out"]), int(answer["rc"])
        return _result(self.seed, self.iters, self.timeout_s, timed_out, rc, text[-4000:], text)

    def close(self) -> None:
        if self._proc.poll() is None:
            assert self._proc.stdin is not None
            self._proc.stdin.close()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._tmp.cleanup()

    def __enter__(self) -> ForkSmoke:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
