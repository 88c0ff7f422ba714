"""Run one permutation a step at a time (step mode), with a way back.

`Stepper` drives the same Driver as every other run, pausing between steps:
`step()` runs the next step and returns what it did (its events), which
sessions are still waiting and on whom, and the tables as a new transaction
would see them (the driver's state after each step, driver.StepState: read on
the control connection, so the sessions' own snapshots are not disturbed). Going back replays the permutation from the
start, in a freshly emptied schema, up to the wanted step: a database cannot
undo a step, so the same steps are simply run again.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from txlab.interleave import driver as d
from txlab.interleave.demo import FinalPlan
from txlab.interleave.spec import Permutation, Spec


@dataclass
class StepView:
    index: int  # the step just run, from 0
    events: list  # what happened since the previous step
    waiting: list = field(default_factory=list)  # (session, step, holders) still blocked
    state: list = field(default_factory=list)  # (label, pq.Result | None): committed rows


class Stepper:
    def __init__(self, spec: Spec, dsn: str, perm: Permutation, isolation_sql: str | None,
                 step_timeout: float, schema: str, plan: FinalPlan):
        self.spec, self.dsn, self.perm = spec, dsn, perm
        self.isolation_sql, self.step_timeout, self.schema = isolation_sql, step_timeout, schema
        self.plan = plan
        self.driver: d.Driver | None = None
        self.steps = None
        self.done = 0  # steps run so far
        self.mark = 0  # events already handed out

    @property
    def total(self) -> int:
        return len(self.perm.steps)

    def __enter__(self) -> Stepper:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self) -> None:
        d.prepare_schema(self.dsn, self.schema)
        self.driver = d.Driver(self.spec, self.dsn, self.isolation_sql, self.step_timeout,
                               self.plan.queries, self.schema, self.plan.shown).__enter__()
        try:
            self.driver.start_permutation(self.perm)
            self.steps = self.driver.iter_steps(self.perm)
        except BaseException:
            self.close()
            raise
        self.done = 0
        self.mark = 0

    def close(self) -> None:
        """End the sessions' transactions and run the teardown if the run was not
        finished; close every connection."""
        if self.driver is None:
            return
        try:
            if self.steps is not None:
                self.steps.close()
                self.driver.abandon()
        finally:
            self.driver.__exit__(None, None, None)
            self.driver, self.steps = None, None

    def _new_events(self) -> list:
        events = self.driver.run.events[self.mark:]
        self.mark = len(self.driver.run.events)
        return events

    def step(self) -> StepView:
        """Run the next step; what it did, who waits, and the committed state."""
        try:
            index = next(self.steps)
        except BaseException:
            self.close()
            raise
        self.done = index + 1
        return StepView(index, self._new_events(), self.driver.waiting_sessions(), self.state())

    def held_up(self) -> tuple[str, str, str] | None:
        """(next step, its session, that session's step still waiting) when the next
        step cannot be sent before that wait ends; else None."""
        if self.done >= self.total:
            return None
        nxt = self.perm.steps[self.done]
        before = self.driver.waits_before(nxt)
        if before is None:
            return None
        return nxt.name, self.spec.sessions[self.spec.steps()[nxt.name].session].name, before

    def settle(self) -> StepView | None:
        """Wait now, before the next key press, for what the next step has to wait
        for anyway (driver.end_wait_before): a wait that ends by itself, such as a
        deadlock PostgreSQL resolves, shows within the step during which it ended.
        What it did, or None when nothing had to wait."""
        if self.done >= self.total:
            return None
        try:
            if not self.driver.end_wait_before(self.perm.steps[self.done]):
                return None
        except BaseException:
            self.close()
            raise
        return StepView(self.done - 1, self._new_events(), self.driver.waiting_sessions(),
                        self.state())

    def replay(self, upto: int) -> StepView | None:
        """Start again and run the first `upto` steps without pausing (and settle
        after the last, as step mode does after each)."""
        self.close()
        self.start()
        view = None
        for _ in range(upto):
            view = self.step()
        if view is not None:
            settled = self.settle()
            if settled is not None:
                view.waiting, view.state = settled.waiting, settled.state
            view.events = self.driver.run.events[1:]  # everything since the start
        return view

    def finish(self) -> tuple[list, d.PermutationRun]:
        """Complete the waiting steps, read the final state, run the teardown."""
        try:
            for _ in self.steps:
                pass
            self.steps = None
            run = self.driver.finish_permutation()
        except BaseException:
            self.close()
            raise
        events = self._new_events()
        self.close()
        return events, run

    def state(self) -> list:
        """The shown tables (show query, or every table the spec created) after the
        step just run: (label, committed rows, or None when unreadable)."""
        states = self.driver.run.states
        return [(label, res) for label, res, _error in states[-1].tables] if states else []
