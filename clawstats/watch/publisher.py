"""``Publisher``: the store's rows and snapshots. It rebuilds the rows whose keys changed
(``build_row`` over :class:`Joins`), patches the :class:`RowTable`, re-derives lineage and
forecasts (:class:`Enricher`) and publishes an immutable :class:`Snapshot` naming the changed
keys (the same snapshot, with fresh health, when nothing a reader sees changed).

Each key keeps one row object, the served (enriched) one: the enricher reads the rows as built
through :class:`BuiltRows`, which hands out the rows built in this publish as they are and
rebuilds any other from its served row (enrichment only sets ``ENRICHED``; of those, a built row
has only ``parent_key`` and ``channel``, kept per key when set). One row instead of two is ~330
bytes a session.
"""

from __future__ import annotations

import os
import time
from collections.abc import Collection, ItemsView, Iterable, Iterator, Mapping, ValuesView
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import cast

import msgspec

from clawstats.core.catalog import Catalog
from clawstats.core.enrich import MEMO_MIN_CALLS, forecast_of
from clawstats.core.enricher import Enricher
from clawstats.core.forecast import CompactionConfig, TurnsLeft
from clawstats.core.health import Health, HealthLog
from clawstats.core.layered import Layered
from clawstats.core.rollup import Members
from clawstats.core.session import SessionRow, build_row
from clawstats.core.snapshot import Lazy, Shape, Snapshot, TranscriptView, ViewsByRow, changed_keys, usual_stats_id
from clawstats.watch.base_prompts import BasePrompts
from clawstats.watch.joins import Joins
from clawstats.watch.layout import AgentSource
from clawstats.watch.rows import RowTable
from clawstats.watch.source import Source, cursor_id
from clawstats.watch.split import split_map
from clawstats.watch.tail import Tail

#: The fields enrichment sets (lineage, tree cost, cron job, channel, compaction forecast).
ENRICHED = (
    "parent_key",
    "root_key",
    "tree_cost",
    "cron_job",
    "channel",
    "context_growth_per_turn",
    "turns_to_compaction",
    "turns_to_compaction_reason",
)
_NOT_ENRICHED = dict.fromkeys(ENRICHED)
#: A cold start of this many rows or more builds them in two processes (when ``split_rows``).
SPLIT_MIN_ROWS = 4096
#: The child's share of them: this process also sums the totals (~6 us a transcript, a row
#: ~30 us) and reads the child's rows back (~2 us each), so both end together.
SPLIT_CHILD_SHARE = 0.6
#: A row as built, whether it shows the base prompt estimate, and its forecast: growth, turns
#: left, the reason when none, calls on its timeline (-1: no forecast, archived or no transcript).
Foreseen = tuple[SessionRow, bool, int | None, int | None, str | None, int]
_foreseen_decoder = msgspec.msgpack.Decoder(list[Foreseen])
_USUAL: object = object()  # (a row reading its usual stats id: no entry)


class BuiltRows(Mapping[str, SessionRow]):
    """The rows as built (before enrichment), by key: what the enricher reads."""

    def __init__(
        self,
        served: Mapping[str, SessionRow],
        fresh: Mapping[str, SessionRow],
        links: Mapping[str, tuple[str | None, str | None]],
    ) -> None:
        self.served = served  # every key's served row (the table's)
        self.fresh = fresh  # the rows built in this publish
        self.links = links  # key -> the built row's (parent_key, channel), when either is set
        self._all: dict[str, SessionRow] | None = None  # every row, once a reader walked them all

    def __getitem__(self, key: str) -> SessionRow:
        if self._all is not None:
            return self._all[key]
        row = self.fresh.get(key)
        return row if row is not None else self._rebuilt(self.served[key])

    def _rebuilt(self, served: SessionRow) -> SessionRow:
        links = self.links.get(served.key)
        if links is None:
            return msgspec.structs.replace(served, **_NOT_ENRICHED)
        return msgspec.structs.replace(served, **{**_NOT_ENRICHED, "parent_key": links[0], "channel": links[1]})

    def everything(self) -> dict[str, SessionRow]:
        """Every row at once (a whole-tree pass reads them all, several times): built once."""
        if self._all is None:
            fresh, rebuilt = self.fresh, self._rebuilt
            self._all = {key: fresh.get(key) or rebuilt(row) for key, row in self.served.items()}
        return self._all

    def values(self) -> ValuesView[SessionRow]:
        return self.everything().values()

    def items(self) -> ItemsView[str, SessionRow]:
        return self.everything().items()

    def __contains__(self, key: object) -> bool:
        return key in self.served

    def __iter__(self) -> Iterator[str]:
        return iter(self.served)

    def __len__(self) -> int:
        return len(self.served)


class RowViews(Mapping[str, TranscriptView]):
    """Each served row's transcript view by row key, read through the joins (its source's stats
    id): no map of its own (~50 bytes a session). A row is rebuilt whenever its source or its
    transcript's view changes, so this is the view it was built with."""

    __slots__ = ("_table", "_joins")

    def __init__(self, table: RowTable, joins: Joins) -> None:
        self._table = table
        self._joins = joins

    def __getitem__(self, key: str) -> TranscriptView:
        view = self._joins.row_view(key) if key in self._table.rows else None
        if view is None:
            raise KeyError(key)
        return view

    def __iter__(self) -> Iterator[str]:
        row_view = self._joins.row_view
        return (key for key in self._table.rows if row_view(key) is not None)

    def __len__(self) -> int:
        return sum(1 for _ in self)


class Publisher:
    """The served rows, the revision and the last snapshot; one writer (the store)."""

    def __init__(self, state_dir: Path, catalog: Catalog, health: HealthLog, joins: Joins, bases: BasePrompts) -> None:
        self.state_dir = state_dir
        self.catalog = catalog
        self.health = health
        self.joins = joins
        self.bases = bases
        self.table = RowTable()
        self.views = RowViews(self.table, joins)
        self._built: dict[str, SessionRow] = {}  # rows built in this publish, before enrichment
        self._links: dict[str, tuple[str | None, str | None]] = {}  # see BuiltRows
        self.enricher = Enricher()
        self._by_key: Layered[SessionRow] | None = None
        # The snapshots read each row's view through their rows and counted transcripts
        # (ViewsByRow): what they need beside those is each agent's usual stats id (replaced,
        # never changed: snapshots hold it) and the rows that read another (or none).
        self.shapes: dict[str, Shape] = {}
        self._unusual: dict[str, str | None] = {}
        self._unusual_held = False  # the last snapshot holds ``_unusual``: copied before a change
        self._reshaped = False  # an agent's shape changed: every row's stats id is looked at again
        self.rows_built = 0  # lifetime count of build_row calls (a test pins per-append work)
        #: a cold start's rows built in two processes (:mod:`.split`): one-shot reads (the CLI) only
        self.split_rows = False
        self._unkept: list[str] = []  # keys whose forecast the memo holds for this publish only
        self.revision = 0
        self.snapshot: Snapshot | None = None

    def follow(self, agent: AgentSource) -> None:
        """An agent followed (or its layout changed): the usual stats id of its sessions."""
        if agent.layout == "sqlite":
            shape = (cursor_id(agent.agent_id, ""), "")
        else:
            shape = (os.path.join(agent.sessions_dir, ""), ".jsonl")
        if self.shapes.get(agent.agent_id) != shape:
            self.shapes = {**self.shapes, agent.agent_id: shape}
            self._reshaped = True

    def _note_stats_ids(self, served: Iterable[tuple[str, Source | None]]) -> None:
        """Note the stats id of each served row (key, its source; None: not served) that does not
        read the usual one of its agent and its index row's session id (a row without one, an
        orphan or an archive, is noted whatever it reads: the snapshot then needs no session id
        its transcript told the row)."""
        for key, src in served:
            self._note_stats_id(key, src)

    def _note_stats_id(self, key: str, src: Source | None) -> None:
        stats_id: str | None | object = _USUAL
        if src is not None:
            row = src.row
            usual = usual_stats_id(self.shapes, src.agent_id, row.sessionId) if row is not None else None
            if usual is None or src.stats_id != usual:
                stats_id = src.stats_id
        unusual = self._unusual
        if unusual.get(key, _USUAL) == stats_id:
            return
        if self._unusual_held:  # (a snapshot reads it: changed in a copy)
            unusual = self._unusual = dict(unusual)
            self._unusual_held = False
        if stats_id is _USUAL:
            del unusual[key]
        else:
            unusual[key] = cast(str | None, stats_id)

    def _served(self, keys: Iterable[str]) -> Iterator[tuple[str, Source | None]]:
        rows, sources = self.table.rows, self.joins.sources
        return ((key, sources.get(key) if key in rows else None) for key in keys)

    def set_catalog(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.enricher = Enricher()  # forecasts depend on the compaction settings

    def _build(self, src: Source, view: TranscriptView | None = None) -> SessionRow:
        """``view``: the source's transcript view when the caller has it (the one the joins hold)."""
        if view is None and src.stats_id is not None:
            view = self.joins.tviews.get(src.stats_id)
        row, showing = self._row(src, view)
        self._keep(src, row, showing)
        return row

    def _row(self, src: Source, view: TranscriptView | None) -> tuple[SessionRow, bool]:
        """The row of ``src`` as built, and whether it shows its agent's base prompt estimate."""
        tail = cast(Tail, view.source) if view is not None else None  # a view's source is its tail
        stats = tail.current() if tail is not None else None  # an idle transcript: a temporary copy
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
        if tail is not None:
            tail.release()  # one unpacked only to be read (or idle) is packed again
        return row, not src.archived and (stats is None or stats.last_prompt is None)

    def _keep(self, src: Source, row: SessionRow, showing: bool) -> None:
        """Note a row just built (the built rows, their links, the rows showing the estimate)."""
        self.rows_built += 1
        self.bases.shown(src.agent_id, src.key, showing)
        self._built[src.key] = row
        if row.parent_key is not None or row.channel is not None:
            self._links[src.key] = (row.parent_key, row.channel)
        else:
            self._links.pop(src.key, None)

    def _foreseen(self, compaction: CompactionConfig, entry: tuple[Source, TranscriptView | None]) -> Foreseen:
        """A row built, and its forecast when it has one (computed in either process of a split)."""
        src, view = entry
        row, showing = self._row(src, view)
        if view is None or row.archived:
            return row, showing, None, None, None, -1
        growth, left, calls = forecast_of(row, view, compaction)
        return row, showing, growth, left.turns, left.reason, calls

    def _build_split(self, entries: list[tuple[Source, TranscriptView | None]]) -> None:
        """:meth:`_build` of every entry, :data:`SPLIT_CHILD_SHARE` of them in a forked child
        (:func:`split_map`), the forecasts with them: each goes into the enricher's memo, which
        then reads it instead of computing it again, and keeps only those it would have kept."""
        compaction = self.catalog.compaction
        # Meanwhile, the totals sum every transcript (what publish's call would: it then finds
        # nothing left to sum); the child's share makes room for them.
        sums = partial(self.joins.rollup.totals, 0)
        work = partial(self._foreseen, compaction)
        built = split_map(work, entries, _foreseen_decoder.decode, sums, SPLIT_CHILD_SHARE)
        memo = self.enricher.memo
        for (src, view), (row, showing, growth, turns, reason, calls) in zip(entries, built, strict=True):
            self._keep(src, row, showing)
            if view is not None and calls >= 0:
                memo[src.key] = (view, row.context_window, row.context_tokens, growth, TurnsLeft(turns, reason))
                if calls < MEMO_MIN_CALLS:
                    self._unkept.append(src.key)

    def _patch(self, keys: set[str]) -> tuple[set[str], set[str]]:
        """Rebuild the rows of ``keys`` in the table; (keys changed or added, keys removed)."""
        table, joins = self.table, self.joins
        changed, removed = table.update(keys, joins.source_of, self._build)
        for key in removed:
            self._links.pop(key, None)
            self.bases.forget(key)
        if changed or removed:
            # lineage, tree cost, forecast: the rebuilt rows, and any other whose lineage moved
            built = BuiltRows(table.rows, self._built, self._links)
            enriched = self.enricher.update(
                built, self.views, set(self._built), removed, table.rows, self.catalog.compaction, added=table.added
            )
            for key, row in enriched.items():
                if table.rows.get(key) != row:
                    table.replace(row)
                    changed.add(key)
        # (a row's stats id moves only with its source: its key is in ``keys``)
        self._note_stats_ids(self._served(keys | changed | removed))
        return changed, removed

    def _build_all(self, keys: set[str]) -> set[str]:
        """The rows of ``keys`` into the empty table: built, enriched and sorted once. The rows
        are those :meth:`_patch` would leave (a test compares), without patching 50,000 rows
        into the order one by one, twice."""
        joins = self.joins
        order: list[str] = []
        views: dict[str, TranscriptView] = {}
        split = self.split_rows and len(keys) >= SPLIT_MIN_ROWS
        entries: list[tuple[Source, TranscriptView | None]] = []  # (split: built after the loop)
        for key in keys:
            src = joins.source_of(key)
            if src is None:
                continue
            view = joins.tviews.get(src.stats_id) if src.stats_id is not None else None
            if split:
                entries.append((src, view))
            else:  # built at once, as a server's rows always were (no list of 50,000 pairs between)
                self._build(src, view)
            order.append(key)
            self._note_stats_id(key, src)  # (the table was empty: no other row is noted)
            if view is not None:
                views[key] = view
        if not order:
            return set()
        if split:
            self._build_split(entries)
        # Every row is built in this publish and none is served: the enricher reads them as built.
        built = self._built
        compaction = self.catalog.compaction
        enriched = self.enricher.update(built, views, set(built), set(), {}, compaction, added=built, release=built)
        for key in self._unkept:  # forecasts of short timelines, read once from the memo
            self.enricher.memo.pop(key, None)
        self._unkept = []
        self.table.load({key: enriched[key] for key in order})
        return set(order)

    def publish(self, keys: set[str], repacked: Collection[str] = ()) -> Snapshot:
        """Rebuild the rows of ``keys`` and publish what changed. ``repacked``: rows whose
        transcript's view is now read from its dump (the same figures: the next snapshot holds
        the new view, none is published for it)."""
        table, joins = self.table, self.joins
        self._built = {}
        removed: set[str] = set()
        cold = not table.rows
        if cold:  # a cold start (or every row was gone): nothing to patch
            changed = self._build_all(keys)
        else:
            changed, removed = self._patch(keys)
        self._built = {}  # the served rows are the only ones kept
        # Frozen mappings for readers that share all but this change with the previous snapshot.
        self._by_key = table.rows.publish()
        if self._reshaped and not cold:  # (an agent's shape changed: every row looked at again)
            self._note_stats_ids(self._served(list(table.rows) + list(self._unusual)))
        self._reshaped = False
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
        counted = joins.rollup.members()
        self._unusual_held = True
        self.snapshot = Snapshot(
            revision=self.revision,
            generated_ms=time.time() * 1000.0,
            state_dir=str(self.state_dir),
            ordered=Lazy(table.order().newest_first),
            by_key=self._by_key,
            views=ViewsByRow(self._by_key, counted, self.shapes, self._unusual),
            counted=Lazy(partial(_transcripts, counted)),
            totals=joins.rollup.totals(len(table.rows), len(table.unknown)),
            health=health,
            catalog=self.catalog,
            changed=changed_keys(changed, self._by_key),
            removed=frozenset(removed),
        )
        return self.snapshot


def _transcripts(members: Members) -> tuple[tuple[str, TranscriptView], ...]:
    """The counted transcripts, read when a reader asks (the store counts frozen views only)."""
    return cast(tuple[tuple[str, TranscriptView], ...], members.all())


def _same_health(a: Health, b: Health) -> bool:
    return (a.counters, a.conditions, a.layouts) == (b.counters, b.conditions, b.layouts)
