"""The simulator's mutable state: current phase, counters, fault budgets and statistics.

Every decision about a request (rule, phase, fault, behaviour) is taken in `admit`, under one
lock, so the thread that owns `SimulatorServer` can read stats or switch phases while the
server's event loop is serving. The lock is held for microseconds and never across an await.

Randomness: each request gets its own `random.Random`, seeded from the scenario seed, the phase,
the rule, the request's content (model and last user message) and how many times that same
content has been seen. The n-th identical request therefore always gets the same draws,
whatever order concurrent requests arrive in, and repeated runs are reproducible.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any

from monitor.simulator.model import Api, Behaviour, FaultSpec, Phase, Rule, RuleSpec, Scenario

_RECENT = 100  # timestamps kept per rule


@dataclass(frozen=True)
class Ticket:
    """Everything decided about one request when it arrived."""

    number: int  # 1-based since start or reset
    rule: Rule
    phase: Phase
    spec: RuleSpec
    rng: random.Random
    fault: FaultSpec | None
    behaviour: Behaviour
    cycle: int  # index of this request among its (phase, rule): picks `output` in turn


class SimState:
    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self._lock = threading.Lock()
        self._phase = scenario.start_phase
        self._hangs: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self._reset_counters()

    def _reset_counters(self) -> None:
        self._total = 0
        self._in_phase = 0
        self._phase_counts: Counter[str] = Counter()
        self._rule_counts: Counter[str] = Counter({r.name: 0 for r in self.scenario.rules})
        self._cycle: Counter[tuple[str, str]] = Counter()
        self._seen: Counter[str] = Counter()
        self._fired: Counter[tuple[str, str, int]] = Counter()
        self._statuses: Counter[int] = Counter()
        self._faults: Counter[str] = Counter()
        self._behaviours: Counter[str] = Counter()
        self._recent: dict[str, deque[float]] = {
            r.name: deque(maxlen=_RECENT) for r in self.scenario.rules
        }

    @property
    def phase(self) -> str:
        return self._phase

    def admit(self, api: Api, model: str, last_user: str) -> Ticket:
        content = hashlib.blake2b(
            f"{api}\0{model}\0{last_user}".encode(), digest_size=12
        ).hexdigest()
        now = time.time()
        with self._lock:
            phase = self.scenario.phase(self._phase)
            rule = self.scenario.match(api, model, last_user)
            spec = self.scenario.specs[(phase.name, rule.name)]
            self._total += 1
            self._in_phase += 1
            self._phase_counts[phase.name] += 1
            self._rule_counts[rule.name] += 1
            self._recent[rule.name].append(now)
            occurrence = self._seen[content]
            self._seen[content] += 1
            cycle = self._cycle[(phase.name, rule.name)]
            self._cycle[(phase.name, rule.name)] += 1
            seed = f"{self.scenario.seed}|{phase.name}|{rule.name}|{content}|{occurrence}"
            rng = random.Random(seed)
            fault = self._pick_fault(phase.name, rule.name, spec, rng)
            behaviour = spec.draw_behaviour(rng)
            if fault is not None:
                self._faults[fault.kind] += 1
            else:
                self._behaviours[behaviour] += 1
            if phase.after_requests is not None and self._in_phase >= phase.after_requests:
                assert phase.next is not None  # the loader guarantees it
                self._switch(phase.next)
            return Ticket(self._total, rule, phase, spec, rng, fault, behaviour, cycle)

    def _pick_fault(
        self, phase: str, rule: str, spec: RuleSpec, rng: random.Random
    ) -> FaultSpec | None:
        for i, fault in enumerate(spec.faults):
            if fault.first_n is not None:
                if self._fired[(phase, rule, i)] < fault.first_n:
                    self._fired[(phase, rule, i)] += 1
                    return fault
            elif fault.rate is not None and rng.random() < fault.rate:
                return fault
        return None

    def record_status(self, status: int) -> None:
        with self._lock:
            self._statuses[status] += 1

    def set_phase(self, name: str) -> None:
        """Switch phase now; raises KeyError naming the known phases for an unknown one."""
        if name not in self.scenario.phase_names:
            known = ", ".join(self.scenario.phase_names)
            raise KeyError(f"unknown phase {name!r}; phases: {known}")
        with self._lock:
            self._switch(name)

    def _switch(self, name: str) -> None:
        self._phase = name
        self._in_phase = 0

    def reset(self) -> None:
        """Zero every counter and fault budget (`first_n` faults fire again); keep the phase."""
        with self._lock:
            self._reset_counters()

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "scenario": self.scenario.name,
                "phase": self._phase,
                "phase_requests": self._in_phase,
                "phases": dict(self._phase_counts),
                "total": self._total,
                "rules": dict(self._rule_counts),
                "statuses": {str(k): v for k, v in sorted(self._statuses.items())},
                "faults": dict(self._faults),
                "behaviours": dict(self._behaviours),
                "recent": {name: list(ts) for name, ts in self._recent.items()},
            }

    # Hanging requests register here so that stopping the server can release them at once
    # instead of waiting for uvicorn's graceful-shutdown timeout.
    def add_hang(self, loop: asyncio.AbstractEventLoop, event: asyncio.Event) -> None:
        with self._lock:
            self._hangs.add((loop, event))

    def remove_hang(self, loop: asyncio.AbstractEventLoop, event: asyncio.Event) -> None:
        with self._lock:
            self._hangs.discard((loop, event))

    def release_hangs(self) -> None:
        """Thread-safe: wake every hanging request so it answers and the server can stop."""
        with self._lock:
            hangs = list(self._hangs)
        for loop, event in hangs:
            if not loop.is_closed():
                loop.call_soon_threadsafe(event.set)
