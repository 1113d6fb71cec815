"""Offline price fallback from the ``genai-prices`` data bundled with that package.

Used only for calls whose transcript entry has no recorded ``usage.cost`` and whose model is
not priced in OpenClaw's config or ``models.json``. The library is imported on first use
(it costs ~150 ms) and never asked to fetch newer prices: no network at run time.
"""

from __future__ import annotations

import importlib.util
import os
from functools import lru_cache
from typing import Any


@lru_cache(maxsize=1)
def _library() -> Any:
    import genai_prices

    return genai_prices


@lru_cache(maxsize=1)
def genai_prices_id() -> str:
    """Names the price data in use (cached per-call costs are recomputed when it changes): the
    installed distribution's version, from its ``.dist-info`` directory's name beside the package
    (``importlib.metadata`` costs a one-shot CLI ~10 ms of imports; the library itself ~150 ms)."""
    spec = importlib.util.find_spec("genai_prices")
    for location in (spec.submodule_search_locations or []) if spec is not None else []:
        site = os.path.dirname(location)
        try:
            names = os.listdir(site)
        except OSError:
            continue
        for name in names:
            if name.startswith("genai_prices-") and name.endswith(".dist-info"):
                return f"genai-prices {name[len('genai_prices-') : -len('.dist-info')]}"
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
