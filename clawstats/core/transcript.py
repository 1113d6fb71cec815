"""Incremental statistics of one transcript: ``TranscriptStats.apply(line)`` per entry (``fold(lines)`` for many).

The accumulator owns everything a transcript contributes: cumulative usage and cost per
(day, model) bucket, message counts, the model that ran last, compactions, a per-call
timeline, and the *context segment*: the entries of the active branch since the last
compaction, as (id hash, characters, prompt tokens) triples in one compact array. The segment is
what lets us estimate the context right after a compaction (OpenClaw only reports a stale or
missing number then) without keeping any message text.

Memory matters more than elegance here (one accumulator per transcript, 50,000 in a server):
the segment is one array of triples and the timeline two arrays of pairs (each array costs a
64-byte header and its spare room), the bucket keys' strings are shared between transcripts,
and a published :class:`~clawstats.core.snapshot.TranscriptView` shares the buckets until the
next call copies them (:meth:`TranscriptStats.share_buckets`).

Semantics follow ``shared/docs/openclaw-session-store.md`` §3-§4: cost is summed over every
assistant message in file order (all branches); context comes from the active branch.
"""

from __future__ import annotations

import zlib
from array import array
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec

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
    shared,
)
from clawstats.core.usage import Bucket, BucketImage, Pricer

#: Assistant messages that are not model calls (OpenClaw's delivery mirrors, injected text).
_SYNTHETIC_PROVIDER = "openclaw"
_INF = float("inf")
_crc32 = zlib.crc32
#: Entries other than messages that change more than the segment (with ``custom`` model snapshots).
_STATEFUL_KINDS = frozenset({"compaction", "reset", "model_change"})
_NOT_A_CALL = frozenset({"error", "aborted"})
CHARS_PER_TOKEN = 4
_SPAWN_MARK = b'"sessions_spawn"'
_STATE_VERSION = 10  # bump when dump() changes: older cached states are then re-read
#: One ``seg`` entry: (id hash, characters, prompt tokens); one timeline call: ``tl_f`` (call ms,
#: cumulative cost) and ``tl_i`` (context tokens, output tokens).
SEG_WIDTH = 3


def id_hash(value: str | int | None) -> int:
    """A stable 32-bit key for an entry id (8-hex ids in 2026.7, UUIDs in 2026.9)."""
    if value is None:
        return 0
    return zlib.crc32(value.encode() if type(value) is str else str(value).encode()) or 1


def iso_to_ms(value: Any) -> float | None:
    """Epoch ms from an ISO-8601 string or an epoch-ms number; None when unusable."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if value == value and 0 <= value < 1e15 else None
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp() * 1000.0


def ms_to_day(ms: float) -> str:
    return datetime.fromtimestamp(ms / 1000.0, UTC).strftime("%Y-%m-%d")


class Compaction(msgspec.Struct, frozen=True, array_like=True, gc=False):
    at_ms: float | None
    tokens_before: int | None
    tokens_after: int | None
    #: our estimate of the context right after it (system prompt and tools included)
    estimate: int | None
    from_hook: bool


class TranscriptStats:
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
        "compactions",
        "resets",
        "seg",
        "last_prompt",
        "base_prompt",
        "last_output",
        "last_call_ms",
        "compacted_after_call",
        "estimate_at_compaction",
        "chars_after_compaction",
        "summary_chars",
        "branch_lost",
        "last_id",
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
        # tuples, not lists: most transcripts never compact nor spawn, and () is one shared object
        self.compactions: tuple[Compaction, ...] = ()
        self.resets = 0
        self.seg = array("I")  # SEG_WIDTH numbers per entry of the active branch since the last compaction
        self.last_prompt: int | None = None
        #: system prompt + tools + bootstrap: the first call's prompt minus what came before it
        self.base_prompt: int | None = None
        self.last_output = 0
        self.last_call_ms: float | None = None
        self.compacted_after_call = False
        self.estimate_at_compaction: int | None = None
        self.chars_after_compaction = 0
        self.summary_chars = 0
        self.branch_lost = False
        # raw id of the last entry (fast path of _follow_branch; None after settle())
        self.last_id: str | int | None = None
        self.tl_f = array("d")  # per call: call ms, cumulative cost
        self.tl_i = array("I")  # per call: context tokens, output tokens
        #: prices one call without a recorded cost (None: such calls stay unpriced); not persisted
        self.price = price
        # the model the transcript last switched to (model_change / model-snapshot)
        self.current_provider: str | None = None
        self.current_model_id: str | None = None
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

    def _compaction(self, line: Line) -> None:
        if self.compacted_after_call:
            base = self.estimate_at_compaction
            if base is not None:
                base += self.chars_after_compaction // CHARS_PER_TOKEN
        elif self.last_prompt is not None:
            base = self.last_prompt + self.last_output + self._chars_since_call() // CHARS_PER_TOKEN
        else:
            base = as_int(line.tokensBefore) or None
        seg = self.seg
        keep_from = self._index_of(id_hash(line.firstKeptEntryId)) if line.firstKeptEntryId else -1
        if keep_from < 0:
            keep_from = len(seg) // SEG_WIDTH  # kept entries unknown: assume all dropped
        dropped = sum(seg[1 : keep_from * SEG_WIDTH : SEG_WIDTH]) + self.summary_chars
        self.summary_chars = max(len(line.summary) - 2, 0)
        estimate = None
        if base is not None:
            estimate = max(base - (dropped - self.summary_chars) // CHARS_PER_TOKEN, 0)
        del seg[: keep_from * SEG_WIDTH]
        at_ms = iso_to_ms(line.timestamp)
        after = as_int(line.tokensAfter) if line.tokensAfter is not None else None
        before = as_int(line.tokensBefore) if line.tokensBefore is not None else None
        self.compactions = (*self.compactions, Compaction(at_ms, before, after, estimate, bool(line.fromHook)))
        self.compacted_after_call = True
        self.estimate_at_compaction = estimate
        self.chars_after_compaction = 0

    def _reset(self) -> None:
        """SQLite store: a ``reset`` event starts a fresh context in the same session."""
        self.resets += 1
        del self.seg[:]
        self.last_prompt = None
        self.last_output = 0
        self.compacted_after_call = False
        self.estimate_at_compaction = None
        self.chars_after_compaction = self.summary_chars = 0

    def _follow_branch(self, parent: str | int | None) -> None:
        """A parent other than the previous entry moves the active branch back to it."""
        if parent is None or parent == self.last_id:
            return
        seg = self.seg
        if not seg:
            return
        parent_hash = id_hash(parent)
        if seg[-SEG_WIDTH] == parent_hash:
            return
        index = self._index_of(parent_hash)
        if index < 0:
            self.branch_lost = True  # parent before the segment: context below is best effort
            return
        del seg[(index + 1) * SEG_WIDTH :]
        for at in range(len(seg) - 1, -1, -SEG_WIDTH):  # the prompts, newest first
            if seg[at]:
                self.last_prompt = seg[at]
                self.compacted_after_call = False
                return

    def _index_of(self, entry_hash: int) -> int:
        """The segment index of the newest entry with this id hash, or -1."""
        seg = self.seg
        for at in range(len(seg) - SEG_WIDTH, -1, -SEG_WIDTH):
            if seg[at] == entry_hash:
                return at // SEG_WIDTH
        return -1

    def _chars_since_call(self) -> int:
        seg = self.seg
        total = 0
        for at in range(len(seg) - 1, -1, -SEG_WIDTH):
            if seg[at]:
                break
            total += seg[at - 1]
        return total

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

    def context(self) -> tuple[int | None, str]:
        """Context in use per the transcript alone: (tokens, "transcript"|"estimate"|"unknown")."""
        if self.compacted_after_call:
            if self.estimate_at_compaction is None:
                return None, "unknown"
            return self.estimate_at_compaction + self.chars_after_compaction // CHARS_PER_TOKEN, "estimate"
        if self.last_prompt is not None:
            return self.last_prompt, "transcript"
        if self.base_prompt is not None:  # reset (SQLite store), no call since: base + what was written
            return self.base_prompt + self.chars_since_reset() // CHARS_PER_TOKEN, "estimate"
        return None, "unknown"

    def chars_since_reset(self) -> int:
        """Characters of the entries of the current context (since the start or the last reset)."""
        return sum(self.seg[1::SEG_WIDTH])

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

    # -- persistence (the index cache and worker processes) ---------------------------------

    def dump(self) -> bytes:
        if self.blob is not None:
            return self.blob
        # Encoded into a buffer and copied out: ``encode()`` returns its grown buffer shrunk in
        # place, which keeps up to a quarter more than its size (~110 bytes a packed transcript).
        buffer = bytearray()
        _state_encoder.encode_into(
            _State(
                version=_STATE_VERSION,
                session_id=self.session_id,
                transcript_version=self.version,
                entries=self.entries,
                last_ts=self.last_ts,
                cost=self.cost,
                buckets=[_DayModel(day, model, bucket.image()) for (day, model), bucket in self.buckets.items()],
                messages=(self.user, self.assistant, self.tool_calls, self.tool_results, self.errors),
                model=self.model,
                compactions=self.compactions,
                resets=self.resets,
                seg=self.seg.tobytes(),
                last_prompt=self.last_prompt,
                last_output=self.last_output,
                last_call_ms=self.last_call_ms,
                compacted_after_call=self.compacted_after_call,
                estimate_at_compaction=self.estimate_at_compaction,
                chars_after_compaction=self.chars_after_compaction,
                summary_chars=self.summary_chars,
                branch_lost=self.branch_lost,
                tl_f=self.tl_f.tobytes(),
                tl_i=self.tl_i.tobytes(),
                current_provider=self.current_provider,
                current_model_id=self.current_model_id,
                spawned=self.spawned,
                base_prompt=self.base_prompt,
            ),
            buffer,
        )
        return bytes(buffer)

    @classmethod
    def load(cls, blob: bytes, price: Pricer | None = None) -> TranscriptStats:
        """Inverse of :meth:`dump`; raises ValueError on a blob of another version."""
        state = _decode(blob)
        # Every slot set once, here, not first by __init__: a cold start loads each of 50,000
        # transcripts (a temporary copy to build its row), ~40% of a load was the double setting.
        self = cls.__new__(cls)
        self.session_id, self.version, self.entries = state.session_id, state.transcript_version, state.entries
        self.last_ts, self.cost = state.last_ts, state.cost
        self.buckets = {(shared(b.day), shared(b.model)): b.bucket.bucket() for b in state.buckets}
        self.shared_buckets = False
        self.user, self.assistant, self.tool_calls, self.tool_results, self.errors = state.messages
        self.model = shared(state.model) if state.model is not None else None
        self.compactions, self.resets = state.compactions, state.resets
        self.seg = array("I", state.seg)  # bytes: read as the machine's words (frombytes)
        self.last_prompt, self.last_output, self.last_call_ms = state.last_prompt, state.last_output, state.last_call_ms
        self.base_prompt = state.base_prompt
        self.compacted_after_call = state.compacted_after_call
        self.estimate_at_compaction = state.estimate_at_compaction
        self.chars_after_compaction, self.summary_chars = state.chars_after_compaction, state.summary_chars
        self.branch_lost = state.branch_lost
        self.last_id = None
        self.tl_f = array("d", state.tl_f)
        self.tl_i = array("I", state.tl_i)
        self.price = price
        self.current_provider = shared(state.current_provider) if state.current_provider else None
        self.current_model_id = shared(state.current_model_id) if state.current_model_id else None
        self.spawned = state.spawned
        self.blob = blob
        return self

    @staticmethod
    def check(blob: bytes) -> None:
        """Raise ValueError when :meth:`load` would (another version, not a state): a blob kept
        packed is checked once, when it is adopted, not when it is next needed."""
        _decode(blob)


def _decode(blob: bytes) -> _State:
    try:
        version = _version_decoder.decode(blob).version
        if version != _STATE_VERSION:
            raise ValueError("transcript state of another version")
        return _state_decoder.decode(blob)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:  # invalid UTF-8 is a ValueError
        raise ValueError(str(exc)) from None


class _DayModel(msgspec.Struct, array_like=True):
    day: str
    model: str
    bucket: BucketImage


class _Version(msgspec.Struct, array_like=True):
    """The first field of every persisted state: read alone to reject other versions cheaply."""

    version: int


class _State(msgspec.Struct, array_like=True):
    """The persisted image of a :class:`TranscriptStats` (index cache, worker processes).

    What a packed transcript's readers read without loading it comes first, in this order
    (``core/peek.py`` decodes a prefix: the fields after it are never looked at): the figures of
    :func:`~clawstats.core.peek.peek`, then the view's part (:func:`~clawstats.core.peek.shape_of`).
    """

    version: int
    entries: int
    cost: float
    last_call_ms: float | None
    base_prompt: int | None
    tl_f: bytes
    tl_i: bytes
    buckets: list[_DayModel]
    compactions: tuple[Compaction, ...]
    spawned: tuple[str, ...]
    session_id: str | None
    transcript_version: int | None
    last_ts: str | float | None
    messages: tuple[int, int, int, int, int]
    model: str | None
    resets: int
    seg: bytes
    last_prompt: int | None
    last_output: int
    compacted_after_call: bool
    estimate_at_compaction: int | None
    chars_after_compaction: int
    summary_chars: int
    branch_lost: bool
    current_provider: str | None
    current_model_id: str | None


_state_encoder = msgspec.msgpack.Encoder()
_version_decoder = msgspec.msgpack.Decoder(_Version)
_state_decoder = msgspec.msgpack.Decoder(_State)


def _day_of(line: Line) -> str:
    ts = line.timestamp
    if isinstance(ts, str) and len(ts) >= 10 and ts.endswith("Z"):
        return ts[:10]  # UTC ISO: the date is its prefix, no parsing needed
    msg_ts = line.message.timestamp if line.message is not None else None
    ms = iso_to_ms(ts) or iso_to_ms(msg_ts)
    return ms_to_day(ms) if ms is not None else "unknown"
