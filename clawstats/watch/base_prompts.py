"""``BasePrompts``: per agent, the base prompt (system prompt + tools + bootstrap) of its latest
transcript that has one, the context estimate of that agent's sessions that have had no call yet.

Followed from the transcripts that changed in a scan: a newer call with a base prompt takes over
at once; only when the latest one loses its base prompt (replaced, deleted) are the agent's
transcripts looked at again. The rows showing the estimate are kept per agent, so a change of
the value rebuilds those rows and no other.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from clawstats.watch.tail import Tail


class BasePrompts:
    def __init__(self, tails_of: Callable[[str], Iterable[tuple[str, Tail]]]) -> None:
        self._tails_of = tails_of  # agent id -> its (stats id, tail) pairs
        self._latest: dict[str, tuple[float, int, str]] = {}  # agent -> (call ms, tokens, stats id)
        self._showing: dict[str, set[str]] = {}  # agent -> keys of rows showing the estimate

    def of(self, agent_id: str) -> int | None:
        found = self._latest.get(agent_id)
        return found[1] if found is not None else None

    def note(self, agent_id: str, stats_id: str, tail: Tail | None) -> bool:
        """A transcript changed (``tail`` None: gone); True when the agent's value changed."""
        best = self._latest.get(agent_id)
        figures = tail.peek() if tail is not None else None  # a packed transcript stays packed
        base = figures.base_prompt if figures is not None else None
        if figures is not None and base is not None:
            at = figures.last_call_ms or 0.0
            if best is None or at > best[0] or (best[2] == stats_id and at == best[0]):
                self._latest[agent_id] = (at, base, stats_id)
                return best is None or best[1] != base
            if best[2] != stats_id:
                return False
        elif best is None or best[2] != stats_id:
            return False
        # The latest one lost its base prompt or went back in time: look again over the agent's.
        latest: tuple[float, int, str] | None = None
        for sid, other in self._tails_of(agent_id):
            figures = other.peek()
            found = figures.base_prompt
            if found is not None:
                at = figures.last_call_ms or 0.0
                if latest is None or at > latest[0]:
                    latest = (at, found, sid)
        if latest is None:
            del self._latest[agent_id]
            return True
        self._latest[agent_id] = latest
        return latest[1] != best[1]

    def shown(self, agent_id: str, key: str, showing: bool) -> None:
        """Whether the row ``key`` (just built) shows the estimate."""
        keys = self._showing.setdefault(agent_id, set())
        if showing:
            keys.add(key)
        else:
            keys.discard(key)

    def forget_agent(self, agent_id: str) -> None:
        """The agent's readers were replaced (a layout upgrade, new prices): start over."""
        self._latest.pop(agent_id, None)

    def forget(self, key: str) -> None:
        for keys in self._showing.values():
            keys.discard(key)

    def rows_showing(self, agent_id: str) -> set[str]:
        return self._showing.get(agent_id, set())
