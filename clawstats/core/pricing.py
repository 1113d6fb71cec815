"""Offline price fallback from the ``genai-prices`` data bundled with that package.

Used only for calls whose transcript entry has no recorded ``usage.cost`` and whose model is
not priced in OpenClaw's config or ``models.json``. The library is imported on first use
(it costs ~150 ms) and never asked to fetch newer prices: no network at run time.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any


@lru_cache(maxsize=1)
def _library() -> Any:
    import genai_prices

    return genai_prices


def genai_prices_id() -> str:
    """Names the price data in use (cached per-call costs are recomputed when it changes)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"genai-prices {version('genai-prices')}"
    except PackageNotFoundError:
        return "genai-prices"


@lru_cache(maxsize=4096)
def genai_price(model: str, input_tokens: int, output: int, cache_read: int, cache_write: int) -> float | None:
    """USD for one model's tokens (OpenClaw's ``input`` is uncached input), None if unknown."""
    lib = _library()
    provider, _, model_id = model.partition("/")
    usage = lib.Usage(
        input_tokens=input_tokens + cache_read + cache_write,
        output_tokens=output,
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
    )
    if not provider or not model_id:
        return None  # no provider: guessing one would price a local model at a cloud API's rates
    try:
        # Only the provider the call went through: ``ollama/deepseek-r1`` is a local model, not
        # DeepSeek's API, and ``foo/gpt-4o`` is not OpenAI's. Unknown there means unpriced.
        return float(lib.calc_price(usage, model_id, provider_id=provider).total_price)
    except (LookupError, ValueError):
        return None
