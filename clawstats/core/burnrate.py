"""How fast money is spent: cost in the last hour and 24 h, and where today will end.

Input is every model call as (epoch ms, USD), read from the transcripts' per-call timelines.
The projection to the end of the UTC day is a range, not one number: the last
``RATE_WINDOW_HOURS`` whole hours before now are cut into one-hour bins (an idle hour is a bin
of 0), and the spent-so-far today is extended by the hours left at the lowest, the mean and the
highest of those hourly rates. Where a daily budget is configured, ``budgetReachedAt`` is when
the mean rate reaches it (already-reached days give the time of the call that crossed it).
Pure; ``now_ms`` is always passed in.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from clawstats.core.session import iso_ms

HOUR_MS = 3_600_000.0
DAY_MS = 24 * HOUR_MS
RATE_WINDOW_HOURS = 6


class Projection(msgspec.Struct, frozen=True):
    low: float
    expected: float
    high: float


class BurnRate(msgspec.Struct, frozen=True, rename="camel"):
    last_hour_usd: float
    last_24h_usd: float = msgspec.field(name="last24hUsd")
    today_usd: float
    rate_usd_per_hour: Projection  # lowest / mean / highest of the recent hourly rates
    projected_day_usd: Projection  # today's spend at the end of the UTC day
    daily_budget_usd: float | None = None
    budget_reached_at: str | None = None  # ISO time, None when no budget or not reached today


def burn_rate(calls: Iterable[tuple[float, float]], now_ms: float, daily_budget_usd: float | None = None) -> BurnRate:
    """Burn rate at ``now_ms`` from ``(call ms, call USD)`` pairs (any order; future calls ignored)."""
    day_start = now_ms - now_ms % DAY_MS
    hours_left = (day_start + DAY_MS - now_ms) / HOUR_MS
    bins = [0.0] * RATE_WINDOW_HOURS
    last_hour = last_day = today = 0.0
    todays: list[tuple[float, float]] = []
    for at_ms, usd in calls:
        age = now_ms - at_ms
        if age < 0 or age >= DAY_MS:
            continue
        if age < HOUR_MS:
            last_hour += usd
        if age < DAY_MS:
            last_day += usd
        if at_ms >= day_start:
            today += usd
            todays.append((at_ms, usd))
        index = int(age // HOUR_MS)
        if index < RATE_WINDOW_HOURS:
            bins[index] += usd
    low, high = min(bins), max(bins)
    mean = sum(bins) / RATE_WINDOW_HOURS
    rates = Projection(low, mean, high)
    projected = Projection(today + low * hours_left, today + mean * hours_left, today + high * hours_left)
    return BurnRate(
        last_hour_usd=last_hour,
        last_24h_usd=last_day,
        today_usd=today,
        rate_usd_per_hour=rates,
        projected_day_usd=projected,
        daily_budget_usd=daily_budget_usd,
        budget_reached_at=_budget_reached(todays, today, mean, now_ms, day_start, daily_budget_usd),
    )


def _budget_reached(
    todays: list[tuple[float, float]],
    today: float,
    rate: float,
    now_ms: float,
    day_start: float,
    budget: float | None,
) -> str | None:
    if budget is None:
        return None
    if today >= budget:
        spent = 0.0
        for at_ms, usd in sorted(todays):
            spent += usd
            if spent >= budget:
                return iso_ms(at_ms)
        return iso_ms(now_ms)  # float rounding: reached by now
    if rate <= 0:
        return None
    at_ms = now_ms + (budget - today) / rate * HOUR_MS
    return iso_ms(at_ms) if at_ms < day_start + DAY_MS else None
