"""``RowTable``: the served rows between scans, patched for the keys that changed.

Rows are kept by key and in order (newest first for readers) by inserting at their bisected
place, so an append to one of 50,000 sessions moves one row instead of sorting all; a change to
more than ``RESORT_SHARE`` of the rows (a cold start) sorts once instead.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable

from clawstats.core.session import SessionRow
from clawstats.core.snapshot import TranscriptView
from clawstats.watch.source import Source

#: A change touching more rows than this share of all rows re-sorts instead of patching.
RESORT_SHARE = 0.1


def _order_key(row: SessionRow) -> tuple[float, str]:
    """Oldest first here; :meth:`RowTable.newest_first` reverses it (``sort=updated``'s order,
    ties by key descending), so the default page of ``/api/sessions`` is a slice, not a sort."""
    return (row.updated_at_ms or 0.0, row.key)


class RowTable:
    """Rows, their transcript views and their order; one writer (the store)."""

    def __init__(self) -> None:
        self.rows: dict[str, SessionRow] = {}
        self.views: dict[str, TranscriptView] = {}  # by row key
        self.unknown: set[str] = set()  # rows whose cost is unknown (no readable transcript)
        self._order: list[tuple[float, str]] = []  # rows' sort keys, oldest first
        self._ordered: list[SessionRow] = []  # rows in that order

    def update(
        self,
        keys: set[str],
        source_of: Callable[[str], Source | None],
        build: Callable[[Source], SessionRow],
        view_of: Callable[[Source], TranscriptView | None],
    ) -> tuple[set[str], set[str]]:
        """Rebuild the rows of ``keys``; returns (keys whose row changed or came, keys removed)."""
        changed: set[str] = set()
        removed: set[str] = set()
        bulk = len(keys) > RESORT_SHARE * max(len(self.rows), 1) or not self.rows
        for key in keys:
            src = source_of(key)
            old = self.rows.get(key)
            if src is None:
                if old is not None:
                    self._drop(old, bulk)
                    self.views.pop(key, None)
                    removed.add(key)
                continue
            row = build(src)
            view = view_of(src)
            if view is not None:
                self.views[key] = view
            else:
                self.views.pop(key, None)
            if old is not None and old == row:
                continue
            if old is not None:
                self._drop(old, bulk)
            self.rows[key] = row
            if row.total_cost is None:
                self.unknown.add(key)
            if not bulk:
                at = bisect_left(self._order, _order_key(row))
                self._order.insert(at, _order_key(row))
                self._ordered.insert(at, row)
            changed.add(key)
        if bulk:
            self._ordered = sorted(self.rows.values(), key=_order_key)
            self._order = [_order_key(row) for row in self._ordered]
        return changed, removed

    def load(self, rows: dict[str, SessionRow], views: dict[str, TranscriptView]) -> None:
        """Fill an empty table with ``rows`` (their final form) and their views; sorts once."""
        assert not self.rows
        self.rows, self.views = rows, views
        self.unknown = {key for key, row in rows.items() if row.total_cost is None}
        self._ordered = sorted(rows.values(), key=_order_key)
        self._order = [_order_key(row) for row in self._ordered]

    def replace(self, row: SessionRow) -> None:
        """Put ``row`` in place of the row of its key (same sort key: the order is unchanged)."""
        old = self.rows[row.key]
        assert _order_key(old) == _order_key(row)
        self.rows[row.key] = row
        at = bisect_left(self._order, _order_key(row))
        self._ordered[at] = row

    def newest_first(self) -> tuple[SessionRow, ...]:
        return tuple(self._ordered[::-1])  # two C copies; tuple(reversed(...)) iterates in Python

    def _drop(self, row: SessionRow, bulk: bool) -> None:
        del self.rows[row.key]
        self.unknown.discard(row.key)
        if not bulk:
            at = bisect_left(self._order, _order_key(row))
            del self._order[at]
            del self._ordered[at]
