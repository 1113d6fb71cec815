"""``RowTable``: the served rows between scans, patched for the keys that changed.

Rows are kept by key and in order (oldest first, read newest first) by inserting at their
bisected place, so an append to one of 50,000 sessions moves one row instead of sorting all; a
change to more than ``RESORT_SHARE`` of the rows (a cold start) sorts once instead. The order is
held in chunks of about ``CHUNK`` rows, each a tuple never changed once made: a change makes its
chunk again, and a snapshot's row order (:meth:`RowTable.order`) is the list of chunks of its
publish (~100 references at 50,000 rows), joined into one tuple only when a reader asks. A row's
place is bisected in its chunk by the rows' own sort keys (``bisect``'s ``key``), not in a second
list of keys (a tuple and a slot per row: ~3 MB at 50,000 rows). The rows by key (``Rows``) are
the last published frozen mapping, shared with the snapshots, and the changes since.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterator, Mapping
from typing import cast

from clawstats.core.layered import Layered
from clawstats.core.session import SessionRow
from clawstats.watch.source import Source

#: A change touching more rows than this share of all rows re-sorts instead of patching.
RESORT_SHARE = 0.1
#: Rows per chunk of the order (a chunk that grows past twice this is split in two).
CHUNK = 512

_Key = tuple[float, str]


def _order_key(row: SessionRow) -> _Key:
    """Oldest first here; :meth:`RowOrder.newest_first` reverses it (``sort=updated``'s order,
    ties by key descending), so the default page of ``/api/sessions`` is a slice, not a sort."""
    return (row.updated_at_ms or 0.0, row.key)


class RowOrder:
    """The rows' order at one publish: chunks that never change, joined on demand."""

    __slots__ = ("chunks",)

    def __init__(self, chunks: tuple[tuple[SessionRow, ...], ...]) -> None:
        self.chunks = chunks  # (tuples: never changed)

    def newest_first(self) -> tuple[SessionRow, ...]:
        rows: list[SessionRow] = []
        for chunk in reversed(self.chunks):
            rows.extend(reversed(chunk))
        return tuple(rows)


_GONE: object = object()


class Rows(Mapping[str, SessionRow]):
    """The rows by key: the last published (the snapshots' frozen :class:`Layered` mapping) and
    the changes since. The snapshots' mapping is the table's, not a copy of it beside a dict of
    the same 50,000 rows (~2 MB)."""

    __slots__ = ("published", "_pending", "_len")

    def __init__(self, published: Layered[SessionRow]) -> None:
        self.published = published
        self._pending: dict[str, SessionRow | object] = {}  # a removed row: _GONE
        self._len = len(published)

    def __getitem__(self, key: str) -> SessionRow:
        value = self._pending.get(key, self)
        if value is self:
            return self.published[key]
        if value is _GONE:
            raise KeyError(key)
        return value  # type: ignore[return-value]

    def __contains__(self, key: object) -> bool:
        value = self._pending.get(key, self) if isinstance(key, str) else _GONE
        return key in self.published if value is self else value is not _GONE

    def __len__(self) -> int:
        return self._len

    def __iter__(self) -> Iterator[str]:
        pending = self._pending
        for key, value in pending.items():
            if value is not _GONE:
                yield key
        for key in self.published:
            if key not in pending:
                yield key

    def __setitem__(self, key: str, row: SessionRow) -> None:
        if key not in self:
            self._len += 1
        self._pending[key] = row

    def __delitem__(self, key: str) -> None:
        if key not in self:
            raise KeyError(key)
        self._len -= 1
        self._pending[key] = _GONE

    def publish(self) -> Layered[SessionRow]:
        """The rows now, frozen for a snapshot (only what changed since the last is new)."""
        pending = self._pending
        if pending:
            changed = {key: value for key, value in pending.items() if value is not _GONE}
            gone = {key for key, value in pending.items() if value is _GONE}
            self.published = self.published.updated(cast(dict[str, SessionRow], changed), gone)
            self._pending = {}
        return self.published


class RowTable:
    """Rows and their order; one writer (the store). (A row's transcript view is read through the
    joins: :class:`~clawstats.watch.publisher.RowViews`, no map here.)"""

    def __init__(self) -> None:
        self.rows = Rows(Layered.of({}))
        self.unknown: set[str] = set()  # rows whose cost is unknown (no readable transcript)
        self.added: set[str] = set()  # keys that had no row before the last update
        self._ordered: list[tuple[SessionRow, ...]] = []  # chunks of the rows, oldest first
        self._lasts: list[_Key] = []  # each chunk's last sort key (which chunk holds a key)

    def update(
        self,
        keys: set[str],
        source_of: Callable[[str], Source | None],
        build: Callable[[Source], SessionRow],
    ) -> tuple[set[str], set[str]]:
        """Rebuild the rows of ``keys``; returns (keys whose row changed or came, keys removed)."""
        changed: set[str] = set()
        removed: set[str] = set()
        self.added = set()
        bulk = len(keys) > RESORT_SHARE * max(len(self.rows), 1) or not self.rows
        for key in keys:
            src = source_of(key)
            old = self.rows.get(key)
            if src is None:
                if old is not None:
                    self._drop(old, bulk)
                    removed.add(key)
                continue
            row = build(src)
            if old is not None and old == row:
                continue
            if old is not None:
                self._drop(old, bulk)
            else:
                self.added.add(key)
            self.rows[key] = row
            if row.total_cost is None:
                self.unknown.add(key)
            if not bulk:
                self._insert(row)
            changed.add(key)
        if bulk:
            self._sort()
        return changed, removed

    def load(self, rows: dict[str, SessionRow]) -> None:
        """Fill an empty table with ``rows`` (their final form); sorts once."""
        assert not self.rows
        self.rows = Rows(Layered(cast(dict[str, SessionRow | object], rows), None, len(rows)))  # the dict itself
        self.unknown = {key for key, row in rows.items() if row.total_cost is None}
        self._sort()

    def replace(self, row: SessionRow) -> None:
        """Put ``row`` in place of the row of its key (same sort key: the order is unchanged)."""
        old = self.rows[row.key]
        key = _order_key(row)
        assert _order_key(old) == key
        self.rows[row.key] = row
        at, i = self._find(key)
        rows = self._ordered[at]
        self._ordered[at] = rows[:i] + (row,) + rows[i + 1 :]

    def order(self) -> RowOrder:
        """The order now, for a snapshot (its chunks are never changed: a change makes new ones)."""
        return RowOrder(tuple(self._ordered))

    def _sort(self) -> None:
        ordered = sorted(self.rows.values(), key=_order_key)
        self._ordered = [tuple(ordered[at : at + CHUNK]) for at in range(0, len(ordered), CHUNK)]
        self._lasts = [_order_key(chunk[-1]) for chunk in self._ordered]

    def _find(self, key: _Key) -> tuple[int, int]:
        """(chunk, place in it) of a sort key in the order."""
        at = min(bisect_left(self._lasts, key), len(self._lasts) - 1)
        return at, bisect_left(self._ordered[at], key, key=_order_key)

    def _insert(self, row: SessionRow) -> None:
        key = _order_key(row)
        if not self._ordered:
            self._ordered, self._lasts = [(row,)], [key]
            return
        at, i = self._find(key)
        rows = self._ordered[at]
        rows = rows[:i] + (row,) + rows[i:]
        if len(rows) > 2 * CHUNK:  # split in two
            self._ordered[at : at + 1] = [rows[:CHUNK], rows[CHUNK:]]
            self._lasts[at : at + 1] = [_order_key(rows[CHUNK - 1]), _order_key(rows[-1])]
        else:
            self._ordered[at] = rows
            self._lasts[at] = _order_key(rows[-1])

    def _drop(self, row: SessionRow, bulk: bool) -> None:
        del self.rows[row.key]
        self.unknown.discard(row.key)
        if bulk:
            return
        at, i = self._find(_order_key(row))
        rows = self._ordered[at]
        if len(rows) == 1:
            del self._ordered[at], self._lasts[at]
            return
        rows = self._ordered[at] = rows[:i] + rows[i + 1 :]
        self._lasts[at] = _order_key(rows[-1])
