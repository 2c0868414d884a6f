"""Runs targets case after case, groups what breaks by kind, and replays one case exactly.

Case ``n`` of target ``t`` under seed ``s`` draws everything from ``random.Random(f"{s}:{t}:{n}")``,
so ``--replay t --case n --seed s`` (with the same ``--type`` selection) makes the same inputs.
"""

from __future__ import annotations

import dataclasses
import random
import signal
import sys
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .catalogue import CATALOGUE
from .oracle import Finding, unexpected
from .targets import TARGETS

CASE_SECONDS = 60  # past this, a case is a hang (decoding the most zero-width elements takes ~5 s)


class Hang(BaseException):
    """Not an Exception: code that turns a user's exception into a DecodeError must not catch it."""


@contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    """Raises Hang in the main thread after ``seconds`` (a decode that never returns)."""
    if not hasattr(signal, "setitimer") or threading_main() is False:
        yield
        return

    def on_alarm(signum: int, frame: Any) -> None:
        # where the case was when the time ran out: a hang on the event loop's thread (a call
        # that blocks, a loop that never yields) is reported from inside the loop's callback,
        # whose own traceback would end at the callback, not at the call that held it
        where = "".join(traceback.format_stack(frame)[-6:])
        raise Hang(f"the case ran for more than {seconds} s, stopped in:\n{where}")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def threading_main() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


@dataclasses.dataclass
class Result:
    target: str
    case: int
    seed: int
    finding: Finding | None
    summary: str = ""
    trace: str = ""


def case_rng(seed: int, target: str, case: int) -> random.Random:
    return random.Random(f"{seed}:{target}:{case}")


def run_case(target: str, case: int, seed: int, types: dict[str, Any] | None = None,
             limit: float = CASE_SECONDS) -> Result:
    rng = case_rng(seed, target, case)
    try:
        with _time_limit(limit):
            summary = TARGETS[target](rng, CATALOGUE if types is None else types)
    except Finding as finding:
        return Result(target, case, seed, finding, trace=traceback.format_exc())
    except Hang as exc:
        return Result(target, case, seed, Finding("hang", str(exc)), trace=traceback.format_exc())
    except (RecursionError, MemoryError) as exc:
        return Result(target, case, seed, unexpected("the case", exc), trace=traceback.format_exc())
    except Exception as exc:  # a bug of the harness itself: reported like any finding
        return Result(target, case, seed, unexpected("the fuzz harness", exc), trace=traceback.format_exc())
    return Result(target, case, seed, None, summary)


@dataclasses.dataclass
class Group:
    first: Result
    count: int = 1


def replay_command(result: Result, type_names: list[str] | None, skipped: list[str] | None = None) -> str:
    selected = "".join(f" --type '{name}'" for name in type_names or [])
    selected += "".join(f" --skip-type '{name}'" for name in skipped or [])
    return f"python -m fuzz --replay {result.target} --case {result.case} --seed {result.seed}{selected}"


def run(targets: list[str], seed: int, seconds: float | None = None, cases: int | None = None,
        types: dict[str, Any] | None = None, out: Any = None) -> dict[tuple[str, str], Group]:
    """Runs each target's cases 0, 1, 2... until ``seconds`` pass (each target getting an equal
    share of the time: a slow target runs fewer cases, not at the others' expense) or until each
    ran ``cases`` cases."""
    out = out or sys.stdout
    groups: dict[tuple[str, str], Group] = {}
    start = time.monotonic()
    done = dict.fromkeys(targets, 0)
    spent = dict.fromkeys(targets, 0.0)
    while True:
        if cases is not None:
            waiting = [t for t in targets if done[t] < cases]
            if not waiting:
                break
            target = waiting[0]
        else:
            if seconds is not None and time.monotonic() - start >= seconds:
                break
            target = min(targets, key=lambda t: spent[t])
        case = done[target]
        began = time.monotonic()
        result = run_case(target, case, seed, types)
        spent[target] += time.monotonic() - began
        done[target] += 1
        if result.finding is not None:
            key = (target, result.finding.kind)
            if key in groups:
                groups[key].count += 1
            else:
                groups[key] = Group(result)
                print(f"FINDING {target} case {case}: {result.finding}", file=out, flush=True)
    elapsed = time.monotonic() - start
    print(f"ran {sum(done.values())} cases in {elapsed:.0f} s ({', '.join(f'{t} {n}' for t, n in done.items())})",
          file=out)
    return groups


def report(groups: dict[tuple[str, str], Group], type_names: list[str] | None, skipped: list[str] | None = None,
           out: Any = None) -> None:
    out = out or sys.stdout
    if not groups:
        print("no findings", file=out)
        return
    print(f"\n{len(groups)} distinct finding(s):", file=out)
    for (target, kind), group in sorted(groups.items()):
        print(f"\n[{target}] {kind} ({group.count} case{'s' if group.count != 1 else ''})", file=out)
        assert group.first.finding is not None
        print(f"  e.g. {group.first.finding.detail[:600]}", file=out)
        print(f"  replay: {replay_command(group.first, type_names, skipped)}", file=out)
