"""Part of a long list of independent computations in a forked child process, the rest here at
the same time: a one-shot read's first publish builds every row after the workers have read
every transcript, on one core while the other idles (~1.7 s of CPU at 50,000 sessions).

The child is a fork of this process at that moment: it reads what this process holds (sources,
tails, catalog) without any of it being sent, and sends back only its results (msgpack, typed
when decoded here). For one-shot reads only (the CLI): the results decoded here are copies (a
server shares its rows' strings), and a server has threads a fork would copy mid-work.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Callable, Sequence
from typing import NoReturn, TypeVar

import msgspec

T = TypeVar("T")
R = TypeVar("R")

log = logging.getLogger(__name__)
_encoder = msgspec.msgpack.Encoder()


def split_map(
    work: Callable[[T], R],
    items: Sequence[T],
    decode: Callable[[bytes], list[R]],
    meanwhile: Callable[[], object] | None = None,
    child_share: float = 0.5,
) -> list[R]:
    """``[work(item) for item in items]``, the last ``child_share`` of them computed by a forked
    child (``decode`` reads its msgpack back) while this process computes the others and calls
    ``meanwhile`` (other work of its own, which the child's share makes room for). Should the
    child fail, its share is computed here after all; with no child to be had (a fork refused:
    a pids limit, no memory to commit), every item is."""
    half = len(items) - round(len(items) * child_share)
    read_fd, write_fd = os.pipe()
    try:
        pid = os.fork()
    except OSError as exc:
        os.close(read_fd)
        os.close(write_fd)
        log.debug("no child to build %d items (%s): built here", len(items) - half, exc)
        mine = [work(item) for item in items]
        if meanwhile is not None:
            meanwhile()
        return mine
    if pid == 0:
        _child(work, items[half:], read_fd, write_fd)
    os.close(write_fd)
    stream = open(read_fd, "rb")  # closed before the child is waited for, whatever happens
    try:
        mine = [work(item) for item in items[:half]]
        if meanwhile is not None:
            meanwhile()
        data = stream.read()
    except BaseException:
        os.kill(pid, signal.SIGKILL)  # this process fails (or is interrupted): the child's work is moot
        raise
    finally:
        stream.close()  # a child still writing gets EPIPE and exits: the wait below never hangs
        _, status = os.waitpid(pid, 0)
    if status == 0:
        try:
            theirs = decode(data)
            if len(theirs) == len(items) - half:
                return mine + theirs
        except (msgspec.DecodeError, msgspec.ValidationError):
            pass
    log.debug("the child building %d items failed (status %d): built here", len(items) - half, status)
    return mine + [work(item) for item in items[half:]]


def _child(work: Callable[[T], R], items: Sequence[T], read_fd: int, write_fd: int) -> NoReturn:
    code = 1
    try:
        os.close(read_fd)
        data = _encoder.encode([work(item) for item in items])
        with open(write_fd, "wb") as stream:
            stream.write(data)
        code = 0
    finally:
        os._exit(code)  # no atexit handler, no flush of this process's buffers: the parent's own
