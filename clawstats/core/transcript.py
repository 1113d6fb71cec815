"""Incremental statistics of one transcript: ``TranscriptStats.apply(line)`` per entry (``fold(lines)`` for many).

The accumulator owns everything a transcript contributes: cumulative usage and cost per
(day, model) bucket, message counts, the model that ran last, spawned children, a per-call
timeline, and (its base, ``core/segment.py``) the context segment and compactions. Its packed
image is ``core/transcript_image.py``'s.

Memory matters more than elegance here (one accumulator per transcript, 50,000 in a server): the
timeline is two arrays of pairs, the bucket keys' strings are shared between transcripts, and a
published :class:`~clawstats.core.snapshot.TranscriptView` shares the buckets until the next call
copies them (:meth:`TranscriptStats.share_buckets`).

Semantics follow ``shared/docs/openclaw-session-store.md`` §3-§4: cost is summed over every
assistant message in file order (all branches); context comes from the active branch.
"""

from __future__ import annotations

import zlib
from array import array
from collections.abc import Sequence

from clawstats.core.calls import ERROR_STOP_REASONS, TOOL_MARK, is_bookkeeping, is_true, recorded_cost, tool_blocks
from clawstats.core.records import (
    MAX_COUNT,
    Cost,
    Line,
    Message,
    Usage,
    as_int,
    decode_snapshot_data,
    decode_spawn_child,
    iso_to_ms,
    ms_to_day,
    shared,
)
from clawstats.core.segment import CHARS_PER_TOKEN, Compaction, ContextSegment, id_hash
from clawstats.core.transcript_image import check, dump, load_into
from clawstats.core.usage import Bucket, Pricer

__all__ = ["CHARS_PER_TOKEN", "Compaction", "TranscriptStats", "iso_to_ms"]

#: Assistant messages that are not model calls (OpenClaw's delivery mirrors, injected text).
_SYNTHETIC_PROVIDER = "openclaw"
_INF = float("inf")
_crc32 = zlib.crc32
#: Entries other than messages that change more than the segment (with ``custom`` model snapshots).
_STATEFUL_KINDS = frozenset({"compaction", "reset", "model_change"})
_NOT_A_CALL = frozenset({"error", "aborted"})
_SPAWN_MARK = b'"sessions_spawn"'
#: One timeline call: ``tl_f`` (call ms, cumulative cost) and ``tl_i`` (context tokens, output tokens).


class TranscriptStats(ContextSegment):
    """Mutable accumulator for one transcript; fed entries in order by its single owner."""

    __slots__ = (
        "session_id",
        "version",
        "entries",
        "last_ts",
        "cost",
        "buckets",
        "shared_buckets",
        "user",
        "assistant",
        "tool_calls",
        "tool_results",
        "errors",
        "model",
        "last_call_ms",
        "tl_f",
        "tl_i",
        "price",
        "current_provider",
        "current_model_id",
        "spawned",
        "blob",
    )

    def __init__(self, price: Pricer | None = None) -> None:
        self.session_id: str | None = None
        self.version: int | None = None
        self.entries = 0
        # the last entry's timestamp: its ISO string while reading, epoch ms once settled (24 bytes
        # instead of ~75; only ``last_ms`` reads it)
        self.last_ts: str | float | None = None
        # known cost (recorded usage.cost.total, or computed per call) summed in file order: with
        # recorded costs only, OpenClaw's own sum to the last digit
        self.cost = 0.0
        self.buckets: dict[tuple[str, str], Bucket] = {}
        #: ``buckets`` (the dict and its Buckets) is held by a published view: copied before a change
        self.shared_buckets = False
        self.user = self.assistant = self.tool_calls = self.tool_results = self.errors = 0
        self.model: str | None = None
        super().__init__()
        self.last_call_ms: float | None = None
        self.tl_f = array("d")  # per call: call ms, cumulative cost
        self.tl_i = array("I")  # per call: context tokens, output tokens
        #: prices one call without a recorded cost (None: such calls stay unpriced); not persisted
        self.price = price
        # the model the transcript last switched to (model_change / model-snapshot)
        self.current_provider: str | None = None
        self.current_model_id: str | None = None
        # tuples, not lists: most transcripts never spawn, and () is one shared object
        self.spawned: tuple[str, ...] = ()  # child session keys named by sessions_spawn results, in order
        #: the dump this state was loaded from while nothing changed it (``dump()`` returns it): a
        #: transcript unpacked only to be read is packed again without a dump
        self.blob: bytes | None = None

    # -- feeding ---------------------------------------------------------------------------

    def apply(self, line: Line) -> None:
        """Fold one decoded entry into the statistics."""
        self.fold((line,))

    def fold(self, lines: Sequence[Line]) -> None:
        """Fold decoded entries, in order, into the statistics (:meth:`apply` of each)."""
        # The hot path of a cold read (~14 entries a transcript, 50,000 transcripts): one call
        # for all the entries of a read, and in it the branch check, the segment push, the id
        # hash and the user message inline, not calls (a call costs about what the work it does);
        # the rare kinds keep their methods.
        if not lines:
            return
        self._continuable()
        self.blob = None
        self.entries += len(lines)
        seg = self.seg  # changed in place only, never replaced
        for line in lines:
            ts = line.timestamp
            if isinstance(ts, str):
                self.last_ts = ts
            kind = line.type
            if kind == "session":
                self._session(line)
                continue
            parent = line.parentId
            if parent is not None and parent != self.last_id:  # else the active branch goes on
                self._follow_branch(parent)
            chars = prompt = 0  # what the entry adds to the segment
            if kind == "message":
                msg = line.message
                if msg is not None:
                    chars = len(msg.content) - 2  # raw JSON of the content, quotes off
                    if chars < 0:
                        chars = 0
                    role = msg.role
                    if role == "assistant":
                        prompt = self._assistant(line, msg)
                    elif role == "user":
                        self.user += 1
                    else:
                        self._other_message(msg, role)
            elif kind in _STATEFUL_KINDS or (kind == "custom" and line.customType == "model-snapshot"):
                if not self._other_entry(kind, line):
                    continue
            # (any other entry, e.g. a bootstrap or thinking-level one, only takes its place in the segment)
            # the segment push: (id hash, characters, prompt tokens)
            entry_id = line.id
            self.last_id = entry_id
            seg.append(_crc32(entry_id.encode()) or 1 if type(entry_id) is str else id_hash(entry_id))
            seg.append(chars)  # < 2**32: lines are capped far below (max_line_bytes)
            seg.append(prompt)  # capped at 2**32 - 1 by _assistant
            if prompt == 0 and self.compacted_after_call:
                self.chars_after_compaction += chars

    def _session(self, line: Line) -> None:
        if isinstance(line.id, str) and self.session_id is None:
            self.session_id = line.id
        self.version = as_int(line.version) or None

    def _other_entry(self, kind: str | None, line: Line) -> bool:
        """A compaction, reset or model switch; False when it adds nothing to the segment."""
        if kind == "compaction":
            self._compaction(line)
        elif kind == "reset":
            self._reset()
            return False
        elif kind == "model_change":
            self._switch_model(line.provider, line.modelId)
        else:  # a model-snapshot
            snap = decode_snapshot_data(line.data)
            if snap is not None:
                self._switch_model(snap.provider, snap.modelId)
        return True

    def _other_message(self, msg: Message, role: str | None) -> None:
        """A message neither the user's nor the assistant's: tool results, spawned children."""
        if role in ("toolResult", "tool"):  # a standalone tool result (OpenClaw counts both)
            self.tool_results += 1
            if is_true(msg.isError) or is_true(msg.is_error):
                self.errors += 1
            elif msg.toolName == "sessions_spawn":
                self._spawned(decode_spawn_child(msg.details))
        elif role == "custom" and _SPAWN_MARK in bytes(msg.details):  # 2026.9: a nested tool's result
            self._spawned(decode_spawn_child(msg.details))

    def _assistant(self, line: Line, msg: Message) -> int:
        """Count one assistant message and add its call's usage to its bucket; return the call's
        prompt size (0: not a call). One method for what were three calls (hot: half the entries)."""
        self.assistant += 1
        content = bytes(msg.content)
        if TOOL_MARK in content:  # most messages have no tool block: one pass, no call
            calls, results, failed = tool_blocks(content)
            self.tool_calls += calls
            self.tool_results += results
            self.errors += failed
        stop = msg.stopReason
        if stop in ERROR_STOP_REASONS:
            self.errors += 1
        provider, model_id = msg.provider, msg.model
        # the common case first: the message names both (one format, no lookups)
        model = f"{provider}/{model_id}" if provider and model_id else self._attribute(provider, model_id)
        synthetic = provider == _SYNTHETIC_PROVIDER
        bookkeeping = (synthetic or len(msg.openclawDeliveryMirror) > 0) and is_bookkeeping(msg)
        if bookkeeping:
            return 0
        if provider or model_id:
            if not synthetic:
                self.model = model  # a string per message: settle() keeps a shared one
        usage = msg.usage
        if usage is None:
            return 0
        # -- the call's usage into its (day, model) bucket
        tin, tout, tcr, tcw = usage.input, usage.output, usage.cacheRead, usage.cacheWrite
        # as_int of each, in one test for the common case (four ints; an OR of non-negative ints
        # is at most MAX_COUNT, all bits set, exactly when each is)
        if not (
            type(tin) is int
            and type(tout) is int
            and type(tcr) is int
            and type(tcw) is int
            and 0 <= tin | tout | tcr | tcw <= MAX_COUNT
        ):
            tin, tout, tcr, tcw = as_int(tin), as_int(tout), as_int(tcr), as_int(tcw)
        ts = line.timestamp
        # UTC ISO: the date is its prefix, no parsing needed
        day = ts[:10] if isinstance(ts, str) and len(ts) >= 10 and ts.endswith("Z") else _day_of(line)
        if self.shared_buckets:
            self._unshare_buckets()
        bucket = self.buckets.get((day, model))
        if bucket is None:
            bucket = self.buckets[(shared(day), shared(model))] = Bucket()
        bucket.calls += 1
        bucket.input += tin
        bucket.output += tout
        bucket.cache_read += tcr
        bucket.cache_write += tcw
        # OpenClaw's rule: the recorded total when there is one (a call that recorded only
        # ``totalTokens`` counts it, its split unknown), else the sum of the four counts.
        recorded = usage.totalTokens
        if recorded is None:
            bucket.total += tin + tout + tcr + tcw
        else:
            bucket.total += recorded if type(recorded) is int and 0 <= recorded <= MAX_COUNT else as_int(recorded)
        cost = usage.cost
        total = cost.total if type(cost) is Cost else cost
        if type(total) is float or type(total) is int:  # exact types: a bool is no cost
            total = float(total) if 0 <= total < _INF else None  # as OpenClaw: negative or inf is none
        else:
            total = recorded_cost(usage)  # the rare shapes
        if total is not None:
            self.cost += total
            bucket.recorded_usd += total
        else:
            self._price(bucket, model, usage, (tin, tout, tcr, tcw))
        # -- the call on the timeline
        prompt = tin + tcr + tcw
        if prompt <= 0 or synthetic or stop in _NOT_A_CALL:
            return 0
        return self._call(line, msg, prompt if prompt <= MAX_COUNT else MAX_COUNT, tout)

    def _call(self, line: Line, msg: Message, prompt: int, tout: int) -> int:
        """A model call (prompt > 0): the context it reports and its place on the timeline."""
        if self.last_prompt is None and not self.compacted_after_call:  # first call of this context
            self.base_prompt = max(prompt - self.chars_since_reset() // CHARS_PER_TOKEN, 0)
        self.last_prompt = prompt
        self.last_output = tout
        at = msg.timestamp  # epoch ms as OpenClaw writes it: iso_to_ms inline
        call_ms = float(at) if type(at) is int and 0 < at < 1e15 else iso_to_ms(at) or iso_to_ms(line.timestamp)
        self.last_call_ms = call_ms
        self.compacted_after_call = False
        tl_f, tl_i = self.tl_f, self.tl_i
        tl_f.append(call_ms or 0.0)
        tl_f.append(self.cost)
        tl_i.append(prompt)
        tl_i.append(tout)
        return prompt

    def _price(self, bucket: Bucket, model: str, usage: Usage, counts: tuple[int, int, int, int]) -> None:
        """A call without a recorded cost: priced when a price applies, else counted unpriced."""
        bucket.missing += 1
        split_known = sum(counts) > 0 or not usage.totalTokens
        # Only a total and no split: no price applies (pricing would invent a split).
        usd = self.price(model, counts) if self.price is not None and split_known else None
        if usd is None:
            bucket.unpriced += 1
        else:
            self.cost += usd
            bucket.computed_usd += usd

    def _attribute(self, provider: str | None, model_id: str | None) -> str:
        """The "provider/model" a call is counted under: the message's own fields, completed by
        the model the transcript last switched to (``model_change`` / ``model-snapshot``) when
        the message names no model or the same one. Rows, groups and pricing all use it."""
        if not model_id:
            model_id, provider = self.current_model_id, provider or self.current_provider
        elif not provider and model_id == self.current_model_id:
            provider = self.current_provider
        return f"{provider or 'unknown'}/{model_id or 'unknown'}"

    def _switch_model(self, provider: str | None, model_id: str | None) -> None:
        if not model_id:
            return
        provider = provider or None
        # OpenClaw writes a model_change and then a model-snapshot of the same model: the second
        # (and an equal model) keeps the strings it has, no lookups
        if model_id != self.current_model_id or provider != self.current_provider:
            self.current_provider = shared(provider) if provider else None
            self.current_model_id = shared(model_id)
        model = f"{provider or 'unknown'}/{model_id}"
        if model != self.model:
            self.model = shared(model)

    def _spawned(self, child: str | None) -> None:
        if child is not None and child not in self.spawned:
            self.spawned = (*self.spawned, child)

    def settle(self) -> None:
        """Called when a read ends: keep the last timestamp as a number and the model as the one
        shared string, and drop what only speeds up the next entries of a read (the raw id of the
        last entry: the segment's id hash answers the same question), so an idle transcript keeps
        no string of its last line. Done here, not per entry: the fold stays as fast as it was."""
        self.last_id = None
        if self.model is not None:
            self.model = shared(self.model)
        if type(self.last_ts) is str:
            ms = iso_to_ms(self.last_ts)
            if ms is not None and 0 <= ms < 1e15:  # else kept as written (last_ms reads both the same)
                self.last_ts = ms

    def _unshare_buckets(self) -> None:
        self.buckets = {key: bucket.copy() for key, bucket in self.buckets.items()}
        self.shared_buckets = False

    # -- reading ---------------------------------------------------------------------------

    @property
    def calls(self) -> int:
        """Calls on the timeline."""
        return len(self.tl_i) // 2

    def timeline(self, calls: int | None = None) -> tuple[array[float], array[int], array[float], array[int]]:
        """(call ms, context tokens, cumulative cost, output tokens) of the first ``calls`` calls
        (all when None): copies, in four arrays."""
        end = 2 * (self.calls if calls is None else calls)
        tl_f, tl_i = self.tl_f, self.tl_i
        return tl_f[0:end:2], tl_i[0:end:2], tl_f[1:end:2], tl_i[1:end:2]

    def timeline_at(self, generation: int, calls: int) -> tuple[array[float], array[int], array[float], array[int]]:
        """:meth:`timeline` for a view made of these statistics (their generation is theirs alone)."""
        return self.timeline(calls)

    def share_buckets(self) -> dict[tuple[str, str], Bucket]:
        """The buckets for a frozen view: this dict and its Buckets are never changed again (the
        next call copies them first), so an idle transcript's view costs no copy."""
        self.shared_buckets = True
        return self.buckets

    @property
    def last_ms(self) -> float | None:
        return iso_to_ms(self.last_ts)

    # -- persistence (the index cache and worker processes: core/transcript_image.py) ---------

    def dump(self, segment: bool = True, extra: bytes = b"") -> bytes:
        return dump(self, segment, extra)

    @classmethod
    def load(cls, blob: bytes, price: Pricer | None = None) -> TranscriptStats:
        """Inverse of :meth:`dump`; raises ValueError on a blob of another version."""
        # Every slot set once, by load_into, not first by __init__ (~40% of a load was that)
        self = cls.__new__(cls)
        load_into(self, blob, price)
        return self

    @staticmethod
    def check(blob: bytes) -> None:
        """Raise ValueError when :meth:`load` would: a blob kept packed is checked once, when it
        is adopted, not when it is next needed."""
        check(blob)


def _day_of(line: Line) -> str:
    ts = line.timestamp
    if isinstance(ts, str) and len(ts) >= 10 and ts.endswith("Z"):
        return ts[:10]  # UTC ISO: the date is its prefix, no parsing needed
    msg_ts = line.message.timestamp if line.message is not None else None
    ms = iso_to_ms(ts) or iso_to_ms(msg_ts)
    return ms_to_day(ms) if ms is not None else "unknown"
