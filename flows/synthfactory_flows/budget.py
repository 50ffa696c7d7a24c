"""Holding a job to its budget (``budget: {max_cost_usd, max_tokens}``).

Spend is what the committed shards report (``cost_usd``, ``prompt_tokens`` +
``completion_tokens`` in their stats), shards committed by an earlier run included. Before
a shard starts, the spend is projected: what is spent, plus the average shard's spend for
every shard already running and for this one. A shard whose projection passes the budget
is not started; the shards running finish and are kept. Until one shard has finished there
is no average, so with a budget only one shard runs at first.
"""

from __future__ import annotations

from dataclasses import dataclass

from synthfactory.errors import GateFailedError
from synthfactory.spec.model import Budget

REASON = "budget"


class BudgetReachedError(GateFailedError):
    """The job stopped at its budget: the version is quarantined with reason ``budget``."""


@dataclass
class Spend:
    budget: Budget
    cost_usd: float = 0.0
    tokens: int = 0
    shards: int = 0
    reached: bool = False
    """A shard was held back because the budget would have been passed."""

    def add(self, stats: dict[str, float]) -> None:
        """A committed shard's spend."""
        self.cost_usd += float(stats.get("cost_usd", 0.0))
        self.tokens += int(stats.get("prompt_tokens", 0) + stats.get("completion_tokens", 0))
        self.shards += 1

    def allows(self, running: int) -> bool:
        """May one more shard start, with ``running`` shards already running?"""
        if not self.budget.set:
            return True
        if self.shards == 0:
            allowed = running == 0  # measure one shard before trusting an average
        else:
            n = running + 1
            cost = self.cost_usd + n * self.cost_usd / self.shards
            tokens = self.tokens + n * self.tokens / self.shards
            allowed = not self._over(cost, tokens)
        if not allowed and running == 0:
            self.reached = True  # nothing left running to wait for: this is the stop
        return allowed

    def _over(self, cost: float, tokens: float) -> bool:
        b = self.budget
        return (b.max_cost_usd is not None and cost > b.max_cost_usd) or (
            b.max_tokens is not None and tokens > b.max_tokens
        )

    def gate(self) -> dict[str, object]:
        """The budget as a failed gate of the quarantined version's manifest."""
        b = self.budget
        metric, limit, value = (
            ("budget.cost_usd", b.max_cost_usd, self.cost_usd)
            if b.max_cost_usd is not None
            else ("budget.tokens", b.max_tokens, self.tokens)
        )
        return {
            "metric": metric,
            "condition": f"<= {limit:g}" if limit is not None else "",
            "value": value,
            "passed": False,
            "reason": REASON,
        }

    def describe(self) -> str:
        spent = f"${self.cost_usd:.4g} and {self.tokens:,} tokens"
        limits = []
        if self.budget.max_cost_usd is not None:
            limits.append(f"max_cost_usd {self.budget.max_cost_usd:g}")
        if self.budget.max_tokens is not None:
            limits.append(f"max_tokens {self.budget.max_tokens:,}")
        return f"spent {spent} of the budget ({', '.join(limits)})"
