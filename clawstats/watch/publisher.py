"""``Publisher``: the store's rows and snapshots. It rebuilds the rows whose keys changed
(``build_row`` over :class:`Joins`), patches the :class:`RowTable`, re-derives lineage and
forecasts (:class:`Enricher`) and publishes an immutable :class:`Snapshot` naming the changed
keys (the same snapshot, with fresh health, when nothing a reader sees changed).
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from clawstats.core.catalog import Catalog
from clawstats.core.enricher import Enricher
from clawstats.core.health import Health, HealthLog
from clawstats.core.layered import Layered
from clawstats.core.session import SessionRow, build_row
from clawstats.core.snapshot import Snapshot, TranscriptView
from clawstats.watch.base_prompts import BasePrompts
from clawstats.watch.joins import Joins
from clawstats.watch.rows import RowTable
from clawstats.watch.source import Source


class Publisher:
    """Rows as built and as enriched, the revision and the last snapshot; one writer (the store)."""

    def __init__(self, state_dir: Path, catalog: Catalog, health: HealthLog, joins: Joins, bases: BasePrompts) -> None:
        self.state_dir = state_dir
        self.catalog = catalog
        self.health = health
        self.joins = joins
        self.bases = bases
        self.table = RowTable()
        self._base_rows: dict[str, SessionRow] = {}  # rows as built, before enrichment
        self._fresh: set[str] = set()  # keys built in this publish
        self.enricher = Enricher()
        self._by_key: Layered[SessionRow] | None = None
        self._views: Layered[TranscriptView] | None = None
        self.rows_built = 0  # lifetime count of build_row calls (a test pins per-append work)
        self.revision = 0
        self.snapshot: Snapshot | None = None

    def set_catalog(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.enricher = Enricher()  # forecasts depend on the compaction settings

    def _build(self, src: Source) -> SessionRow:
        found = self.joins.tails.get(src.stats_id or "")
        stats = found[1].stats if found is not None else None
        self.rows_built += 1
        row = build_row(
            src.key,
            src.agent_id,
            src.row,
            stats,
            self.catalog,
            archived=src.archived,
            archived_from=src.archived_from,
            earlier_cost=self.joins.earlier(src.key),
            base_prompt=self.bases.of(src.agent_id),
        )
        self.bases.shown(src.agent_id, src.key, not src.archived and (stats is None or stats.last_prompt is None))
        self._base_rows[src.key] = row
        self._fresh.add(src.key)
        return row

    def _patch(self, keys: set[str]) -> tuple[set[str], set[str]]:
        """Rebuild the rows of ``keys`` in the table; (keys changed or added, keys removed)."""
        table, joins = self.table, self.joins
        changed, removed = table.update(
            keys, joins.source_of, self._build, lambda src: joins.tviews.get(src.stats_id or "")
        )
        for key in removed:
            self._base_rows.pop(key, None)
            self.bases.forget(key)
        if changed or removed:
            # lineage, tree cost, forecast: the rebuilt rows, and any other whose lineage moved
            enriched = self.enricher.update(
                self._base_rows, table.views, self._fresh, removed, table.rows, self.catalog.compaction
            )
            for key, row in enriched.items():
                if table.rows.get(key) != row:
                    table.replace(row)
                    changed.add(key)
        return changed, removed

    def _build_all(self, keys: set[str]) -> set[str]:
        """The rows of ``keys`` into the empty table: built, enriched and sorted once. The rows
        are those :meth:`RowTable.update` and then :meth:`Enricher.update` would leave (a test
        compares), without patching 50,000 rows into the order one by one, twice."""
        joins = self.joins
        built: list[str] = []
        views: dict[str, TranscriptView] = {}
        for key in keys:
            src = joins.source_of(key)
            if src is None:
                continue
            self._build(src)
            built.append(key)
            view = joins.tviews.get(src.stats_id or "")
            if view is not None:
                views[key] = view
        if not built:
            return set()
        # The table and the rows as built were empty: every row built is fresh, none is served.
        enriched = self.enricher.update(self._base_rows, views, self._fresh, (), {}, self.catalog.compaction)
        self.table.load({key: enriched[key] for key in built}, views)
        return set(built)

    def publish(self, keys: set[str]) -> Snapshot:
        """Rebuild the rows of ``keys`` and publish what changed."""
        table, joins = self.table, self.joins
        self._fresh = set()
        removed: set[str] = set()
        if not table.rows and not self._base_rows:  # a cold start (or every row was gone): nothing to patch
            changed = self._build_all(keys)
        else:
            changed, removed = self._patch(keys)
        # Frozen mappings for readers that share all but this change with the previous snapshot.
        if self._by_key is None or self._views is None:
            self._by_key, self._views = Layered.of(table.rows), Layered.of(table.views)
        elif changed or removed or keys:
            self._by_key = self._by_key.updated({k: table.rows[k] for k in changed}, removed)
            views = {k: table.views[k] for k in keys if k in table.views}
            self._views = self._views.updated(views, {k for k in keys if k not in table.views})
        health = self.health.freeze()
        if self.snapshot is not None and not changed and not removed and not joins.rollup.dirty:
            if not _same_health(health, self.snapshot.health):
                self.revision += 1  # health is part of what readers see
                self.snapshot = replace(
                    self.snapshot,
                    revision=self.revision,
                    generated_ms=time.time() * 1000.0,
                    health=health,
                    changed=frozenset(),
                    removed=frozenset(),
                )
            else:  # same revision (so ETags hold), fresh scan times
                self.snapshot = replace(self.snapshot, health=health)
            return self.snapshot
        self.revision += 1
        self.snapshot = Snapshot(
            revision=self.revision,
            generated_ms=time.time() * 1000.0,
            state_dir=str(self.state_dir),
            rows=table.newest_first(),
            by_key=self._by_key,
            views=self._views,
            transcripts=tuple(joins.counted.values()),
            totals=joins.rollup.totals(len(table.rows), len(table.unknown)),
            health=health,
            catalog=self.catalog,
            changed=frozenset(changed),
            removed=frozenset(removed),
        )
        return self.snapshot


def _same_health(a: Health, b: Health) -> bool:
    return (a.counters, a.conditions, a.layouts) == (b.counters, b.conditions, b.layouts)
