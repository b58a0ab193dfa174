"""The GitHub API emulator (npm ``emulate@0.11.2``) behind a fault-injecting loopback proxy.

``emulate start -s github`` serves a stateful GitHub REST API on one port.
It cannot fail on purpose, so every request goes through :class:`FaultProxy`,
a small HTTP proxy that forwards to the emulator unless a test has armed a
fault (a 502, a 403 secondary rate limit...) for the next matching request.
The emulator is told to advertise the proxy's address (``--base-url``), so the
URLs in its answers, which PyGithub follows, lead back through the proxy.

Binary lookup: ``$DARWIN_EMULATE_BIN``, ``<repo>/node_modules/.bin/emulate``,
``<repo>/.ci/node/node_modules/.bin/emulate``, then ``emulate`` on PATH.
"""

from __future__ import annotations

import functools
import http.client
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any

from permissions import DOCS_URL, NOT_ACCESSIBLE, Enforcer, Level, accepted_header

BOT_LOGIN = "darwin-bot"
BOT_TOKEN = "darwin_bot_test_token"
HUMAN_LOGIN = "alice"
HUMAN_TOKEN = "alice_test_token"
# Someone without rights on the test repositories (alice is a collaborator on each).
OUTSIDER_LOGIN = "mallory"
OUTSIDER_TOKEN = "mallory_test_token"

SEED = f"""\
tokens:
  {BOT_TOKEN}:
    login: {BOT_LOGIN}
    scopes: [repo, user]
  {HUMAN_TOKEN}:
    login: {HUMAN_LOGIN}
    scopes: [repo, user]
  {OUTSIDER_TOKEN}:
    login: {OUTSIDER_LOGIN}
    scopes: [repo, user]
github:
  users:
    - login: {BOT_LOGIN}
      name: Darwin Bot
      email: bot@example.com
    - login: {HUMAN_LOGIN}
      name: Alice
      email: alice@example.com
    - login: {OUTSIDER_LOGIN}
      name: Mallory
      email: mallory@example.com
"""

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


def find_emulate(repo_root: Path) -> str | None:
    """The ``emulate`` executable, or None when it is not installed."""
    env = os.environ.get("DARWIN_EMULATE_BIN")
    if env:
        return env if Path(env).is_file() else None
    for candidate in (
        repo_root / "node_modules" / ".bin" / "emulate",
        repo_root / ".ci" / "node" / "node_modules" / ".bin" / "emulate",
    ):
        if candidate.is_file():
            return str(candidate)
    return shutil.which("emulate")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Fault:
    """Answer ``status`` to the next ``times`` requests matching ``method`` and ``path``."""

    status: int
    method: str | None = None
    path: str = ""  # a regular expression searched in the request path
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, object] = field(default_factory=dict)
    times: int = 1
    # Pass the request on first, then answer the fault: the write happened, its answer was lost.
    forward: bool = False

    def matches(self, method: str, path: str) -> bool:
        return (
            self.times > 0
            and (self.method is None or self.method == method)
            and re.search(self.path, path) is not None
        )


class CommitStatuses:
    """GitHub's commit statuses API, which the emulator lacks (it has check runs only).

    On GitHub ``POST /repos/{o}/{r}/statuses/{sha}`` exists, so GitHubForge never
    falls back to check runs there; serving statuses here keeps the tests on the
    path (and the permission, ``statuses: write``) that GitHub takes.
    """

    _POST = re.compile(r"^/repos/(?P<repo>[^/]+/[^/]+)/statuses/(?P<sha>[0-9a-f]{40})$")
    _GET = re.compile(
        r"^/repos/(?P<repo>[^/]+/[^/]+)/(?:commits/(?P<sha>[0-9a-f]{40})/(?P<kind>status|statuses)"
        r"|statuses/(?P<sha2>[0-9a-f]{40}))$"
    )

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.by_sha: dict[tuple[str, str], list[dict[str, Any]]] = {}  # newest first
        self._next = 1

    def handle(self, method: str, path: str, payload: bytes | None) -> tuple[int, Any] | None:
        """The answer for a statuses request, or None when ``path`` is something else."""
        bare = path.split("?", 1)[0]
        if method == "POST" and (m := self._POST.match(bare)):
            body = json.loads(payload or b"{}")
            if body.get("state") not in ("error", "failure", "pending", "success"):
                return 422, {"message": "Validation Failed"}
            now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            status = {
                "id": self._next, "state": body["state"], "context": body.get("context", "default"),
                "description": body.get("description"), "target_url": body.get("target_url"),
                "created_at": now, "updated_at": now,
                "url": f"{self.base_url}/repos/{m['repo']}/statuses/{m['sha']}",
            }  # fmt: skip
            self._next += 1
            self.by_sha.setdefault((m["repo"], m["sha"]), []).insert(0, status)
            return 201, status
        if method == "GET" and (m := self._GET.match(bare)):
            sha = m["sha"] or m["sha2"]
            every = self.by_sha.get((m["repo"], sha), [])
            if m["kind"] != "status":
                return 200, every
            latest: dict[str, dict[str, Any]] = {}
            for status in every:
                latest.setdefault(status["context"], status)
            states = {s["state"] for s in latest.values()}
            state = next(
                (s for s in ("error", "failure", "pending") if s in states), "success"
            ) if latest else "pending"  # fmt: skip
            return 200, {
                "state": state, "sha": sha, "total_count": len(latest),
                "statuses": list(latest.values()),
                "url": f"{self.base_url}/repos/{m['repo']}/commits/{sha}/status",
            }  # fmt: skip
        return None


class FaultProxy:
    """Forwards HTTP to ``127.0.0.1:<upstream>``; serves armed faults instead when they match."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.faults: list[Fault] = []
        self.log: list[tuple[str, str, int]] = []  # (method, path, status answered)
        # Job tokens (see grant()): token -> (job, its enforcer); each is sent on as BOT_TOKEN.
        self.jobs: dict[str, tuple[str, Enforcer]] = {}
        # (job, method, path, status, the permission the request needed)
        self.job_log: list[tuple[str, str, str, int, str]] = []
        # Called after each forwarded request: (method, path, status, answer body).
        self.after: list[Callable[[str, str, int, bytes], None]] = []
        self.statuses: CommitStatuses | None = None  # serve_statuses() turns them on
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def inject(self, fault: Fault) -> Fault:
        with self._lock:
            self.faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self.faults.clear()
            self.log.clear()
            self.jobs.clear()
            self.job_log.clear()
            self.after.clear()
            self.statuses = None

    def serve_statuses(self) -> CommitStatuses:
        """Answer the commit statuses API here, as GitHub would (until :meth:`clear`)."""
        with self._lock:
            self.statuses = CommitStatuses(self.url)
            return self.statuses

    def grant(self, job: str, grants: dict[str, Level]) -> str:
        """A token for ``job`` holding ``grants``: the proxy answers 403 where GitHub would."""
        token = f"ghs_job_{job}_{secrets.token_hex(4)}"
        enforcer = Enforcer(grants, self._is_pull, self._comment_number)
        with self._lock:
            self.jobs[token] = (job, enforcer)
        return token

    def _upstream_json(self, path: str) -> tuple[int, Any]:
        conn = http.client.HTTPConnection("127.0.0.1", self.upstream_port, timeout=30)
        try:
            conn.request("GET", path, headers={"Authorization": f"token {BOT_TOKEN}"})
            resp = conn.getresponse()
            return resp.status, json.loads(resp.read() or b"null")
        finally:
            conn.close()

    # Whether a number is a PR, and a comment's issue, never change: asked once each.
    @functools.cache  # noqa: B019 - one proxy per emulator, for the whole session
    def _is_pull(self, owner: str, name: str, number: int) -> bool:
        status, _ = self._upstream_json(f"/repos/{owner}/{name}/pulls/{number}")
        return status == 200

    @functools.cache  # noqa: B019
    def _comment_number(self, owner: str, name: str, comment: int) -> int:
        status, data = self._upstream_json(f"/repos/{owner}/{name}/issues/comments/{comment}")
        assert status == 200, f"comment {comment}: {status}"
        return int(str(data["issue_url"]).rstrip("/").rsplit("/", 1)[1])

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.matches(method, path):
                    fault.times -= 1
                    return fault
        return None

    def _record(self, method: str, path: str, status: int) -> None:
        with self._lock:
            self.log.append((method, path, status))

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body leave in separate writes: with Nagle's algorithm on, each
            # answer on a kept-alive connection waits out the client's delayed ACK (~40 ms).
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass  # quiet: the proxy's own log is proxy.log

            def _reply(self, status: int, headers: dict[str, str], body: bytes) -> None:
                self.send_response(status)
                for key, value in headers.items():
                    if key.lower() not in _HOP_BY_HOP:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _authorize(self) -> bool:
                """A job token: 403 unless its permissions cover the request (then as the bot)."""
                auth = self.headers.get("Authorization", "")
                token = auth.split(" ", 1)[1] if " " in auth else ""
                if token not in proxy.jobs:
                    return True
                job, enforcer = proxy.jobs[token]
                verdict = enforcer.check(self.command, self.path)
                status = 200 if verdict.allowed else 403
                with proxy._lock:
                    proxy.job_log.append((job, self.command, self.path, status, verdict.why))
                if verdict.allowed:
                    del self.headers["Authorization"]
                    self.headers["Authorization"] = f"token {BOT_TOKEN}"
                    return True
                body = json.dumps({"message": NOT_ACCESSIBLE, "documentation_url": DOCS_URL})
                headers = {"Content-Type": "application/json"}
                if accepted := accepted_header(verdict):
                    headers["X-Accepted-GitHub-Permissions"] = accepted
                proxy._record(self.command, self.path, 403)
                self._reply(403, headers, body.encode())
                return False

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                payload = self.rfile.read(length) if length else None
                if not self._authorize():
                    return
                fault = proxy._take_fault(self.command, self.path)
                served = None
                if fault is None and proxy.statuses is not None:
                    with proxy._lock:
                        served = proxy.statuses.handle(self.command, self.path, payload)
                if served is not None:
                    proxy._record(self.command, self.path, served[0])
                    body = json.dumps(served[1]).encode()
                    self._reply(served[0], {"Content-Type": "application/json"}, body)
                    return
                if fault is None or fault.forward:
                    status, headers, data = self._forward(payload)
                    for hook in list(proxy.after):
                        hook(self.command, self.path, status, data)
                if fault is not None:
                    data = json.dumps(fault.body or {"message": "injected"}).encode()
                    status = fault.status
                    headers = {"Content-Type": "application/json", **fault.headers}
                proxy._record(self.command, self.path, status)
                self._reply(status, headers, data)

            def _forward(self, payload: bytes | None) -> tuple[int, dict[str, str], bytes]:
                conn = http.client.HTTPConnection("127.0.0.1", proxy.upstream_port, timeout=30)
                try:
                    fwd = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                    conn.request(self.command, self.path, body=payload, headers=fwd)
                    resp = conn.getresponse()
                    return resp.status, dict(resp.getheaders()), resp.read()
                finally:
                    conn.close()

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _handle

        return Handler


class Emulator:
    """A running ``emulate`` GitHub service behind a :class:`FaultProxy`."""

    def __init__(self, binary: str, workdir: Path) -> None:
        self.binary = binary
        self.workdir = workdir
        self.port = free_port()
        self.proxy = FaultProxy(self.port)
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._repos = 0

    @property
    def api_url(self) -> str:
        """The API address clients use: the proxy's."""
        return self.proxy.url

    def start(self, timeout_s: float = 30.0) -> None:
        seed = self.workdir / "emulate.seed.yaml"
        seed.write_text(SEED)
        self._log = log = open(self.workdir / "emulate.log", "wb")  # noqa: SIM115 - stop() closes
        self.process = subprocess.Popen(
            [
                self.binary,
                "start",
                "--service",
                "github",
                "--port",
                str(self.port),
                "--seed",
                str(seed),
                "--base-url",
                self.proxy.url,
            ],
            cwd=self.workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stop() ends node and children
        )
        self.proxy.start()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"emulate exited early:\n{self.log_text()}")
            if self._ready():
                return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"emulate did not answer within {timeout_s}s:\n{self.log_text()}")

    def _ready(self) -> bool:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
        try:
            conn.request("GET", "/user", headers={"Authorization": f"token {BOT_TOKEN}"})
            return conn.getresponse().status == 200
        except OSError:
            return False
        finally:
            conn.close()

    def log_text(self) -> str:
        path = self.workdir / "emulate.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def stop(self) -> None:
        self.proxy.stop()
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)
        if self._log is not None:
            self._log.close()

    def _admin(self, method: str, path: str, body: dict[str, Any] | None) -> tuple[int, Any]:
        """One request as the repository owner, straight to the emulator."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request(
                method,
                path,
                body=json.dumps(body) if body is not None else None,
                headers={"Authorization": f"token {BOT_TOKEN}", "Content-Type": "application/json"},
            )
            resp = conn.getresponse()
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else None
        finally:
            conn.close()

    def new_repo(self, name: str = "", **settings: bool) -> str:
        """Create a fresh repository (one initial commit on ``main``); return ``owner/name``.

        Alice is made a collaborator, as the team's reviewer would be; ``settings`` are
        repository settings (``allow_merge_commit``, ``delete_branch_on_merge``...).
        """
        self._repos += 1
        name = name or f"evolve-{self._repos}"
        status, data = self._admin("POST", "/user/repos", {"name": name, "auto_init": False})
        if status != 201:
            raise RuntimeError(f"cannot create repository {name}: {status} {data}")
        full = str(data["full_name"])
        status, answer = self._admin(
            "PUT", f"/repos/{full}/collaborators/{HUMAN_LOGIN}", {"permission": "push"}
        )
        if status not in (201, 204):
            raise RuntimeError(f"cannot add {HUMAN_LOGIN} to {full}: {status} {answer}")
        if settings:
            status, answer = self._admin("PATCH", f"/repos/{full}", settings)
            if status != 200:
                raise RuntimeError(f"cannot set {settings} on {full}: {status} {answer}")
        return full
