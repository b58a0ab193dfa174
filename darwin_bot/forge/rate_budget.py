"""What one generation asks of GitHub's API, against the limits GitHub sets.

The limits (GitHub docs, "Rate limits for the REST API"): a workflow's
``GITHUB_TOKEN`` may send 1,000 requests per hour per repository, and every
token at most 500 content-creating requests (POST, PATCH, PUT, DELETE that
create or change content) per hour and 80 per minute (secondary limits). An App
installation token starts at 5,000 requests per hour.

The count is the publisher's request pattern per agent with a PR, as
``benchmarks/orchestration.py`` measures it against the emulator:

* propose, per offspring: open its PR (1 write) and label it (1 write);
* select, per survivor with a PR: its body with the metrics (1 write) and the
  fitness status (1 write);
* select, per culled agent with a PR: look for the closing comment (1 read), post
  it (1 write), close the PR (1 write), the fitness status (1 write);
* each step: list the open PRs (1 read per 100), requests and the dashboard
  (a handful of reads and at most 3 writes).

Branches are never deleted through the API (the atomic push does it), and no
label is created per generation, so nothing here grows with the generation count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

REST_PER_HOUR = 1000  # GITHUB_TOKEN, per repository
WRITES_PER_HOUR = 500  # content-creating requests, any token (secondary limit)
STEP_OVERHEAD_READS = 8  # requests, dashboard, labels, the repository, the probe
STEP_OVERHEAD_WRITES = 3  # dashboard body, acknowledgements


@dataclass(frozen=True)
class RequestBudget:
    """Requests one step (or one generation) sends: reads and content-creating writes."""

    reads: int
    writes: int

    @property
    def requests(self) -> int:
        return self.reads + self.writes

    def hours(self, rest_per_hour: int = REST_PER_HOUR) -> float:
        """Hours of GitHub's limits this takes: the scarcer of requests and writes."""
        return max(self.requests / rest_per_hour, self.writes / WRITES_PER_HOUR)

    def __add__(self, other: RequestBudget) -> RequestBudget:
        return RequestBudget(self.reads + other.reads, self.writes + other.writes)


def propose_budget(offspring: int) -> RequestBudget:
    return RequestBudget(STEP_OVERHEAD_READS + math.ceil(offspring / 100), 2 * offspring + 1)


def select_budget(survivors_with_pr: int, culled_with_pr: int) -> RequestBudget:
    pages = math.ceil((survivors_with_pr + culled_with_pr) / 100)
    return RequestBudget(
        STEP_OVERHEAD_READS + pages + culled_with_pr,
        2 * survivors_with_pr + 3 * culled_with_pr + STEP_OVERHEAD_WRITES,
    )


def generation_budget(population: int, survivors: int) -> RequestBudget:
    """One generation at steady state, ``population - survivors`` offspring with a PR each,
    counted at the worst case for select: every one of them culled."""
    offspring = max(0, population - survivors)
    return propose_budget(offspring) + select_budget(0, offspring)
