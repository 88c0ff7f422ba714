"""`txlab demo NAME --step`: one step per key press, for a class to follow.

Before each step: which step comes next and its SQL. After it: what it
returned, which session is waiting on whom, and the tables as a new
transaction would see them. Enter or space runs the next step, b goes back
(replays from the start up to the previous step), q quits (the sessions are
rolled back and the teardown runs). After the last step and the verdict it
waits once more: b goes back to the last step (to talk the ending over again),
Enter or space goes on to the next permutation (or ends), q ends.
"""

from __future__ import annotations

from collections.abc import Callable

from txlab import db
from txlab import term as terms
from txlab.interleave import demo as demos
from txlab.interleave import render
from txlab.interleave.demo import DemoResult, LevelRun, verdict
from txlab.interleave.driver import SpecRun
from txlab.interleave.stepper import Stepper, StepView
from txlab.keys import BACK, QUIT

PROMPT = "[Enter/space: run it · b: back · q: quit]"
END_PROMPT = "[Enter/space/q: finish · b: back to the last step]"
NEXT_PROMPT = "[Enter/space: next permutation · b: back to the last step · q: quit]"


def _show(out: Callable[[str], None], blocks: list, term: terms.Term) -> None:
    out(render.fit(blocks, term))


def _after_step(result: DemoResult, view: StepView, first_number: int, term: terms.Term,
                state: bool = True) -> list:
    spec = result.spec
    cells = render.timeline_cells(spec, view.events, first_number)
    blocks: list = [render.timeline_table(spec, cells, term, setups=False)] if cells else []
    for session, step, holders in view.waiting:
        by = " and ".join(holders) if holders else "another transaction (or a safe snapshot)"
        blocks.append(render.text_of((f"WAITING: {session} ({step}) waits for {by}", "waiting"),
                                   ("  — it holds a lock this step needs", "muted")))
    states = render.state_blocks(view.state, "Committed state (what a new transaction sees now)")
    if states is not None and state:
        blocks += [render.text_of(""), states]
    return blocks


def _settle(result: DemoResult, st: Stepper, view: StepView, numbered: int,
            out: Callable[[str], None], term: terms.Term) -> None:
    """The next step's session still waits: wait for that now, within this step, and
    show how it ended (a deadlock resolved, a lock timeout), as a run without pauses
    shows it before the next step."""
    held = st.held_up()
    if held is None:
        return
    nxt, session, waiting = held
    _show(out, [render.text_of(""), render.text_of((f"The next step, {nxt}, is {session}'s, and {session} still "
                                f"waits at {waiting}: waiting for that to end first …",
                                "muted"))], term)
    settled = st.settle()
    if settled is None:
        return
    _show(out, _after_step(result, settled, numbered, term,
                           state=_rows(settled.state) != _rows(view.state)), term)


def _rows(state: list) -> list:
    return [(label, res.rows if res is not None and res.has_tuples else None)
            for label, res in state]


def _prompt(result: DemoResult, stepper: Stepper, term: terms.Term):
    step = result.spec.steps()[stepper.perm.steps[stepper.done].name]
    session = result.spec.sessions[step.session].name
    sql = terms.shorten(step.sql, max(20, term.width * 2))
    return render.text_of("\n", (f"Step {stepper.done + 1} of {stepper.total}: ", "heading"),
                        (f"{step.name} ({session}) ", "heading"), sql, "\n", (PROMPT, "muted"))


def _back(result: DemoResult, st: Stepper, target: int, term: terms.Term) -> list:
    """Start the permutation again and run its first `target` steps: what to show."""
    view = st.replay(target)
    note = f"Back: replayed steps 1-{target} from the start." if target else "Back to the start."
    blocks = [render.text_of((note, "muted"))]
    if view is not None:
        blocks += _after_step(result, view, 0, term)
    return blocks


def run(ref: str, dsn: str, isolation: str | None, permutation: str | None,
        step_timeout: float, schema: str, keys, out: Callable[[str], None],
        term: terms.Term) -> DemoResult:
    """Step through each permutation of demo `ref` at one level (`isolation`, or the
    server's default); returns what ran to the end."""
    result, perms = demos.prepare(ref, permutation)
    result.server_version, result.default_isolation = demos.server_facts(dsn)
    (level,) = demos.levels_for(isolation)
    iso_sql = db.LEVELS[level].sql if level else None
    names = tuple(s.name for s in result.spec.sessions)
    finished = []
    _show(out, [render.header(result)], term)
    for n, perm in enumerate(perms):
        head = render.text_of(("Isolation: ", "heading"),
                            render.level_sql(level, result.default_isolation),
                            ("   Permutation: ", "heading"), " ".join(p.name for p in perm.steps)
                            + (f"  ({n + 1} of {len(perms)})" if len(perms) > 1 else ""))
        _show(out, [render.text_of(""), head], term)
        end_prompt = NEXT_PROMPT if n + 1 < len(perms) else END_PROMPT
        with Stepper(result.spec, dsn, perm, iso_sql, step_timeout, schema, result.plan) as st:
            numbered = 0  # timeline numbers shown so far
            while True:
                while st.done < st.total:
                    keys.discard()  # presses made while the last step ran: not for this prompt
                    _show(out, [_prompt(result, st, term)], term)
                    key = keys.read()
                    if key == QUIT:
                        _show(out, [render.text_of((f"Stopped before step {st.done + 1} of "
                                                    f"{st.total}; the sessions were rolled back.",
                                                    "muted"))], term)
                        return result
                    if key == BACK:
                        if st.done == 0:
                            _show(out, [render.text_of(("Already at the first step.", "muted"))],
                                  term)
                            continue
                        numbered = st.done - 1
                        _show(out, _back(result, st, numbered, term), term)
                        continue
                    view = st.step()
                    _show(out, _after_step(result, view, numbered, term), term)
                    numbered += 1
                    _settle(result, st, view, numbered, out, term)
                events, run_ = st.finish()
                tail = render.timeline_cells(result.spec, events, numbered)
                v = verdict(result.meta, run_, level, names)
                blocks = []
                if tail:  # steps that were still waiting completed at the end
                    blocks.append(render.timeline_table(result.spec, tail, term, setups=False))
                    states = render.state_blocks(result.plan.states(run_))
                    if states is not None:
                        blocks += [render.text_of(""), states]
                blocks += [render.text_of(""), render.verdict_text(v)]
                if run_.left_open:
                    blocks.append(render.text_of((demos.left_open_note(run_.left_open),
                                                  "warning")))
                blocks.append(render.text_of("\n", (end_prompt, "muted")))
                keys.discard()  # presses made while the steps finished: not for this prompt
                _show(out, blocks, term)
                key = keys.read()
                if key != BACK:
                    break
                numbered = st.total - 1
                _show(out, _back(result, st, numbered, term), term)
        finished.append((run_, v))
        if key == QUIT:
            break
    result.levels.append(LevelRun(level, SpecRun(names, [r for r, _ in finished], iso_sql),
                                  [v for _, v in finished]))
    return result
