"""The one exception tree of darwin-bot.

Third-party errors (git, PyGithub, openai, OS) are mapped to these at the
boundary with ``raise ... from exc``; nothing above the adapters catches a
library's own exception type. A failed *training run* is never an exception:
it is an ``EvalResult`` whose status ranks worst (see ``core.fitness``).

::

    DarwinError                      exit code 1 unless stated
    ├── ConfigError                  bad darwin.toml, bad CLI value (exit 2)
    ├── DataError                    corpus missing, checksum mismatch, download failed (exit 2)
    ├── SandboxError                 no sandbox backend usable as asked
    ├── GitError                     a git operation failed; branch outside the prefix
    │   └── NotARepository           the folder is not a git repository (exit 2)
    ├── ForgeError                   the forge (GitHub or local) refused or failed
    │   ├── ForgeNotFound            the object does not exist
    │   ├── ForgeAuthError           401/403 that is not a rate limit
    │   └── ForgeTransientError      5xx, timeouts, rate limits: retried, then raised (exit 3)
    ├── LLMError                     the LLM backend failed
    │   ├── LLMTransientError        429, 5xx, timeouts, no connection: retried, then raised (exit 3)
    │   ├── LLMAuthError             401/403, or the server does not know llm.model
    │   ├── LLMRequestError          the server refused this one prompt (400: too long, a
    │   │                            parameter it rejects after learning): that chunk fails
    │   ├── LLMReplyError            the reply cannot be used (garbage, too long)
    │   └── SpendCapReached          the next call would pass llm.max_usd(_per_generation)
    ├── MutationRejected             an edit failed validation (reason in the message)
    ├── SecretInEnvironment          evaluate refused: a token is in its environment (exit 2)
    ├── StateError                   the repository's darwin state is inconsistent
    │   └── BrokenState              a memory file or an agent's branch is broken or gone,
    │                                found before any work (exit 2)
    ├── RunLocked                    another darwin process holds the repository's lock (exit 2)
    ├── SeedDoesNotTrain             the seed's own runs fail: fix it and commit (exit 2)
    └── RunStopped                   the run stopped before its work was done, for a reason
                                     outside the program (LLM or GitHub down, rate limit,
                                     Ctrl-C); nothing was decided, run again to resume (exit 3)

Exit codes: 0 the work asked for was done; 1 an unexpected failure; 2 a usage,
configuration or input error (the line says what to fix); 3 stopped, resume later
(``RunStopped``, and an outage that outlived its retries); 130 interrupted (Ctrl-C).
"""

from __future__ import annotations


class DarwinError(Exception):
    """Base of every error darwin-bot raises on purpose."""

    exit_code: int = 1


class ConfigError(DarwinError):
    """A configuration or command-line value is invalid; the message says how to fix it."""

    exit_code = 2


class DataError(DarwinError):
    """The corpus is missing, corrupt, or could not be fetched."""

    exit_code = 2


class SandboxError(DarwinError):
    """The requested sandbox backend is not usable on this machine."""


class GitError(DarwinError):
    """A git operation failed, or would touch a branch outside the bot's prefix."""


class NotARepository(GitError):
    """The folder darwin was pointed at is not a git repository."""

    exit_code = 2


class ForgeError(DarwinError):
    """The forge (GitHub or the local file forge) failed."""


class ForgeNotFound(ForgeError):
    """The requested object does not exist on the forge."""


class ForgeAuthError(ForgeError):
    """The forge refused the credentials (not a rate limit)."""


class ForgeTransientError(ForgeError):
    """A transient forge failure that survived every retry: stopped, resume later."""

    exit_code = 3


class LLMError(DarwinError):
    """The LLM backend failed."""


class LLMTransientError(LLMError):
    """A transient LLM failure (429, 5xx, timeout) that survived every retry: resume later."""

    exit_code = 3


class LLMAuthError(LLMError):
    """The LLM server refused the credentials, or does not serve ``llm.model`` (401/403/404)."""

    exit_code = 2


class LLMRequestError(LLMError):
    """The server refused this one request (HTTP 400/413/422): the chunk fails, not the run."""


class LLMReplyError(LLMError):
    """The LLM replied with something that cannot be used."""


class SpendCapReached(LLMError):
    """The next LLM call would pass a spend cap: the bot stops mutating (not a failure)."""


class MutationRejected(DarwinError):
    """An edit failed validation; ``str(exc)`` is the reason recorded in memory."""


class SecretInEnvironment(DarwinError):
    """Agent code would run with a secret in reach; evaluation refuses to start."""

    exit_code = 2


class StateError(DarwinError):
    """The population, memory and git disagree in a way that cannot be reconciled."""


class BrokenState(StateError):
    """A memory file is unreadable or breaks its schema, or an agent the memory names is gone.

    Found when state is read, before any work; the message names the file or
    the agent and the fix.
    """

    exit_code = 2


class RunLocked(DarwinError):
    """Another darwin process holds the repository's run lock; the message says who."""

    exit_code = 2


class SeedDoesNotTrain(DarwinError):
    """The seed itself fails every run, so there is no baseline: the user's program to fix."""

    exit_code = 2


class RunStopped(DarwinError):
    """The run stopped for a reason outside the program; nothing was decided, run it again.

    Raised when an outage (LLM, GitHub), a rate limit or an interrupt ends the run
    before the work asked for is done. State on disk is consistent: the next run
    resumes where this one stopped.
    """

    exit_code = 3
