"""Model facts: context windows and prices, from OpenClaw's config and ``models.json``.

Pure: built from already-parsed JSON documents. Lookup order for a window follows OpenClaw
(``agents.defaults.contextTokens``, then the configured model, then the agent's catalog, then
200000); prices come from the configured model, then the agent's catalog, then an optional
fallback (``clawstats.core.pricing``, offline data).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from clawstats.core.forecast import CompactionConfig, compaction_config
from clawstats.core.usage import Pricer

DEFAULT_WINDOW = 200_000

#: USD per 1M tokens: (input, output, cacheRead, cacheWrite)
Prices = tuple[float, float, float, float]
#: (model "provider/id", input, output, cacheRead, cacheWrite) -> USD or None
PriceFallback = Callable[[str, int, int, int, int], float | None]


@dataclass(frozen=True, slots=True)
class ModelFacts:
    window: int | None = None
    prices: Prices | None = None


@dataclass(frozen=True, slots=True)
class Catalog:
    """What the config and the agents' ``models.json`` say about models."""

    default_window: int | None = None
    configured: Mapping[str, ModelFacts] = field(default_factory=dict)
    per_agent: Mapping[str, Mapping[str, ModelFacts]] = field(default_factory=dict)
    fallback_price: PriceFallback | None = None
    compaction: CompactionConfig = field(default_factory=CompactionConfig)
    #: names the fallback's data (e.g. its package version), part of :meth:`identity`
    fallback_id: str = ""

    def _facts(self, agent_id: str, model: str) -> list[tuple[ModelFacts, str]]:
        found = []
        if model in self.configured:
            found.append((self.configured[model], "config"))
        agent_models = self.per_agent.get(agent_id, {})
        if model in agent_models:
            found.append((agent_models[model], "models.json"))
        return found

    def window(self, agent_id: str, model: str | None) -> tuple[int, str]:
        """(window, source) for a model that has no window on its row."""
        if self.default_window:
            return self.default_window, "config"
        for facts, source in self._facts(agent_id, model or ""):
            if facts.window:
                return facts.window, source
        return DEFAULT_WINDOW, "default"

    def pricer(self, agent_id: str) -> Pricer:
        """Prices one call of ``agent_id`` (what a transcript of that agent is read with)."""
        return functools.partial(self.price, agent_id)

    def identity(self) -> str:
        """A digest of every price and the fallback's data: cached per-call costs computed with
        another catalog are not reused."""
        parts = (
            sorted((m, f.prices) for m, f in self.configured.items()),
            sorted((a, sorted((m, f.prices) for m, f in models.items())) for a, models in self.per_agent.items()),
            self.fallback_id,
        )
        return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]

    def price(self, agent_id: str, model: str, tokens: tuple[int, int, int, int]) -> float | None:
        """USD for the tokens (input, output, cacheRead, cacheWrite) of ONE call, None if unpriced."""
        if not any(tokens):
            return 0.0
        for facts, _ in self._facts(agent_id, model):
            if facts.prices is not None:
                return sum(count * rate for count, rate in zip(tokens, facts.prices, strict=True)) / 1e6
        if self.fallback_price is not None:
            return self.fallback_price(model, *tokens)
        return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _facts_of(entry: Mapping[str, Any]) -> ModelFacts:
    window = _number(entry.get("contextWindow"))
    cost = entry.get("cost")
    prices: Prices | None = None
    if isinstance(cost, Mapping):
        rates = [_number(cost.get(k)) for k in ("input", "output", "cacheRead", "cacheWrite")]
        if any(rate is not None for rate in rates):
            prices = (rates[0] or 0.0, rates[1] or 0.0, rates[2] or 0.0, rates[3] or 0.0)
    return ModelFacts(int(window) if window and window > 0 else None, prices)


def models_from_providers(providers: Any) -> dict[str, ModelFacts]:
    """``{"provider/id": facts}`` from a ``providers`` mapping (config ``models`` or models.json)."""
    found: dict[str, ModelFacts] = {}
    if not isinstance(providers, Mapping):
        return found
    for provider, spec in providers.items():
        models = spec.get("models") if isinstance(spec, Mapping) else None
        if not isinstance(models, list):
            continue
        for entry in models:
            if isinstance(entry, Mapping) and isinstance(entry.get("id"), str):
                found[f"{provider}/{entry['id']}"] = _facts_of(entry)
    return found


def catalog_from_config(
    config: Mapping[str, Any] | None,
    agent_models: Mapping[str, Any] | None = None,
    fallback_price: PriceFallback | None = None,
    fallback_id: str = "",
) -> Catalog:
    """Build a :class:`Catalog` from ``openclaw.json`` and ``{agentId: models.json}`` documents."""
    config = config if isinstance(config, Mapping) else {}
    agents = config.get("agents")
    defaults = agents.get("defaults") if isinstance(agents, Mapping) else None
    default_window = _number(defaults.get("contextTokens")) if isinstance(defaults, Mapping) else None
    models_section = config.get("models")
    providers = models_section.get("providers") if isinstance(models_section, Mapping) else None
    per_agent = {
        agent: models_from_providers(doc.get("providers") if isinstance(doc, Mapping) else None)
        for agent, doc in (agent_models or {}).items()
    }
    return Catalog(
        default_window=int(default_window) if default_window and default_window > 0 else None,
        configured=models_from_providers(providers),
        per_agent=per_agent,
        fallback_price=fallback_price,
        compaction=compaction_config(config),
        fallback_id=fallback_id,
    )
