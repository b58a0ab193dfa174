"""Wiring: build an :class:`~darwin_bot.engine.Engine` from a repository and its config.

This is the only place that picks concrete adapters (the trusted evaluator,
the LLM backend, the forge), so the CLI commands and the CI steps all run the
same evolution.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from darwin_bot import faults
from darwin_bot.config import Config
from darwin_bot.core import Budget, EvalResult
from darwin_bot.engine import Engine
from darwin_bot.errors import ConfigError
from darwin_bot.git import GitRepo, hold_run_lock
from darwin_bot.store import GenerationSummary


@dataclass
class TrustedEvaluator:
    """The engine's Evaluator port over ``darwin_bot.evaluate`` with the config's budget.

    Each generation is scored on its own secret windows (``evaluate.windows``):
    the engine names the generation (:meth:`at_generation`) before it evaluates,
    and the windows' name is in :attr:`version`, so in the cache key. Trained
    graphs are kept beside the secret (``keep_dir``): a tree trained in an
    earlier generation is only scored again (``evaluate.rescore``).
    """

    cfg: Config
    root: Path
    threads: int | None = None
    pool: Any = None  # a darwin_bot.evaluate.devices.DevicePool: one evaluation per device
    secret_dir: Path | None = None  # where the window secret is kept (the git folder)
    generation: int | None = None  # whose windows score (None: the run's one set)

    # each training iteration a full run's log reports (display only: never read for the score)
    on_iteration: Callable[[int], None] | None = None

    def at_generation(self, g: int) -> None:
        """Score on generation ``g``'s windows from now on (the same for all its agents)."""
        self.generation = g

    def _windows(self) -> Any:
        from darwin_bot.evaluate import current_windows, read_secret

        return current_windows(read_secret(self.secret_dir), self.generation)

    @property
    def windows(self) -> str | None:
        """The public name of the windows scored now (None: each evaluation draws its own)."""
        chosen = self._windows()
        return chosen.name if chosen is not None else None

    @property
    def keep_dir(self) -> Path | None:
        """Where trained graphs are kept for re-scoring: never committed, never in a sandbox."""
        return self.secret_dir / "darwin-graphs" if self.secret_dir is not None else None

    @property
    def version(self) -> str:
        """The evaluator's version and the windows' name: the cache key never mixes windows."""
        from darwin_bot.evaluate import EVALUATOR_VERSION

        chosen = self._windows()
        return f"{EVALUATOR_VERSION}-w{chosen.name}" if chosen else EVALUATOR_VERSION

    def __call__(
        self,
        tree: Path,
        *,
        seed: int,
        smoke: bool = False,
        budget: Budget | None = None,
        preset: str | None = None,
    ) -> EvalResult:
        from darwin_bot.evaluate import EvalOptions, evaluate_tree

        at: dict[str, Any] = {
            k: v for k, v in (("budget", budget), ("preset", preset)) if v is not None
        }
        if not smoke and self.on_iteration is not None:
            at["on_iteration"] = self.on_iteration
        chosen = self._windows()
        if chosen is not None:
            at |= {"window_seed": chosen.seed, "window_name": chosen.name}
        if not smoke:
            at["keep_dir"] = self.keep_dir
        opts = EvalOptions.from_config(
            self.cfg, self.root, smoke=smoke, seed=seed, threads=self.threads, **at
        )
        if self.pool is None:
            return evaluate_tree(tree, opts)
        with self.pool.take() as slot:  # a device no concurrent evaluation holds
            pinned = {"device": slot.device, "visible_devices": slot.visible}
            return evaluate_tree(tree, dataclasses.replace(opts, threads=slot.threads, **pinned))


def git_dir(repo: GitRepo) -> Path:
    """The folder shared by all worktrees of ``repo`` (where the run lock lives)."""
    return repo.common_dir()


def data_dir_for(root: Path, cfg: Config) -> Path:
    path = Path(cfg.budget.data)
    return path if path.is_absolute() else root / path


def llm_factory(cfg: Config):
    """A function seed -> LLM, so each offspring's heuristic mutator is seeded on its own."""
    from darwin_bot.llm import make_llm, shared_client

    shared = make_llm(cfg.llm, seed=cfg.evolution.seed) if shared_client(cfg.llm) else None

    def make(seed: int):
        return shared if shared is not None else make_llm(cfg.llm, seed=seed)

    return make


def _require_corpus(data: Path) -> None:
    if not (data / "train.bin").exists():
        raise ConfigError(
            f"no corpus at {data}; run 'darwin data prepare --out {data}' "
            "(or --synthetic), or set budget.data in darwin.toml"
        )


def build_engine(
    root: Path,
    cfg: Config,
    *,
    publisher=None,
    workers: int | None = None,
    quiet: bool = False,
    remote: str | None = None,
    evaluator=None,
    wait: bool = False,
    on_generation: Callable[[GenerationSummary], None] | None = None,
) -> Engine:
    """The engine for ``root``, with the repository's run lock held for this process.

    ``evaluator`` overrides the sandboxed one (CI steps with secrets);
    ``wait``: block until another darwin process releases the lock instead of
    failing (``RunLocked``, exit 2); ``on_generation``: shows each generation's
    summary as it is recorded (``darwin run`` prints its leaderboard).
    """
    repo = GitRepo(root, prefix=cfg.evolution.branch_prefix, remote=remote)
    hold_run_lock(git_dir(repo), wait=wait, what="darwin run")
    repo = faults.watch(repo, "git", faults.GIT_WRITES)  # the repo itself unless testing faults
    if publisher is not None and hasattr(publisher, "forge"):
        publisher.forge = faults.watch(publisher.forge, "forge", faults.FORGE_WRITES)
    if evaluator is None:
        _require_corpus(data_dir_for(repo.root, cfg))
    from darwin_bot.evaluate import DevicePool

    pool = DevicePool.detect(workers)  # never more workers than devices; CPU cores split
    n = pool.size
    from darwin_bot.cli.live import LiveEvents
    from darwin_bot.cli.progress import Reporter
    from darwin_bot.spend import build_factory

    say = Reporter(enabled=not quiet)  # bars on a terminal, timestamped lines in CI
    events = LiveEvents(say, on_generation)
    # Every mutation's LLM goes through the spend caps, the price table and the model bandit.
    factory = build_factory(cfg, repo.root / cfg.memory.path, llm_factory(cfg))
    engine = Engine(
        repo,
        cfg,
        evaluator=evaluator
        or TrustedEvaluator(
            cfg,
            repo.root,
            pool=pool,
            secret_dir=git_dir(repo),
            on_iteration=events.iteration,
        ),
        llm_factory=factory,
        publisher=publisher,
        workers=n,
        progress=say,
        events=events,
    )
    factory.generation = engine.next_generation  # bill each call to the generation being made
    return engine
