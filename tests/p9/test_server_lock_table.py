"""The lock table of the file server (jetwire/p9/locks.py) against a model of POSIX record locks
that keeps one type per byte per owner: random sequences of locks and unlocks by a few owners
on two connections. r[9p2000l.server.lock]: fcntl rules for byte ranges (length 0 = to the
end, UNLCK releases, upgrades and downgrades, ranges split and merge), conflicts between owners.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as s

from jetwire.p9 import constants as c
from jetwire.p9.locks import END, Lock, LockTable, Owner

RD, WR, UN = c.P9_LOCK_TYPE_RDLCK, c.P9_LOCK_TYPE_WRLCK, c.P9_LOCK_TYPE_UNLCK
SPAN = 24  # model bytes 0..SPAN-1; every explicit range ends below SPAN - 4, so the tail is "to the end"
OWNERS = [Owner("a", 1, "host"), Owner("a", 2, "host"), Owner("b", 1, "host"), Owner("b", 1, "other")]
KEY = (1, 2)

requests = s.lists(s.tuples(s.sampled_from(OWNERS), s.sampled_from([RD, WR, UN]), s.integers(0, 15),
                            s.integers(0, 5)), max_size=40)


def _end(start: int, length: int) -> int:
    return END if length == 0 else start + length


def _runs(owner: Owner, bytes_: list[int | None]) -> list[Lock]:
    """The canonical description of one owner's bytes: maximal runs of one type."""
    runs: list[Lock] = []
    for index, kind in enumerate(bytes_):
        if kind is None:
            continue
        if runs and runs[-1].end == index and runs[-1].type == kind:
            runs[-1] = runs[-1]._replace(end=index + 1)
        else:
            runs.append(Lock(index, index + 1, kind, owner))
    return [r._replace(end=END) if r.end == SPAN else r for r in runs]


@given(requests)
def test_the_table_is_the_per_byte_model(ops: list[tuple[Owner, int, int, int]]) -> None:
    # r[9p2000l.server.lock]
    table = LockTable()
    model: dict[Owner, list[int | None]] = {owner: [None] * SPAN for owner in OWNERS}
    for owner, kind, start, length in ops:
        end = _end(start, length)
        covered = range(start, min(end, SPAN))
        blocked = kind != UN and any(
            model[other][i] is not None and (kind == WR or model[other][i] == WR)
            for other in OWNERS if other != owner for i in covered)
        found = table.conflict(KEY, owner, kind, start, end) if kind != UN else None
        assert (found is not None) == blocked
        if found is not None:  # a real lock of another owner, overlapping, of a conflicting type
            assert found.owner != owner and found in table.locks(KEY, found.owner)
            assert found.start < end and found.end > start and (kind == WR or found.type == WR)
            continue
        assert table.set(KEY, owner, kind, start, end)
        for i in covered:
            model[owner][i] = None if kind == UN else kind
        for each in OWNERS:
            assert table.locks(KEY, each) == _runs(each, model[each])
    for connection in ("a", "b"):
        together = [max((model[o][i] for o in OWNERS if o.connection == connection and model[o][i] is not None),
                        default=None) for i in range(SPAN)]
        assert [(r.start, r.end, r.type) for r in _runs(OWNERS[0], together)] == table.held(KEY, connection)
    assert table.ranges("a") + table.ranges("b") == sum(len(table.locks(KEY, o)) for o in OWNERS)


def test_splits_merges_and_the_end_of_the_file() -> None:
    # r[9p2000l.server.lock]
    table = LockTable()
    me = OWNERS[0]
    table.set(KEY, me, WR, 0, 30)
    table.set(KEY, me, UN, 10, 20)
    assert table.locks(KEY, me) == [Lock(0, 10, WR, me), Lock(20, 30, WR, me)]  # split
    table.set(KEY, me, WR, 10, 20)
    assert table.locks(KEY, me) == [Lock(0, 30, WR, me)]  # merged with both neighbours
    table.set(KEY, me, RD, 5, 8)
    assert table.locks(KEY, me) == [Lock(0, 5, WR, me), Lock(5, 8, RD, me), Lock(8, 30, WR, me)]  # a downgrade
    table.set(KEY, me, RD, 100, END)
    assert table.conflict(KEY, OWNERS[2], WR, 10**15, 10**15 + 1) == Lock(100, END, RD, me)
    assert table.conflict(KEY, OWNERS[2], RD, 10**15, END) is None  # readers share
    table.set(KEY, me, UN, 0, END)
    assert table.locks(KEY, me) == [] and table.ranges("a") == 0 and table.owners(KEY) == []


def test_a_connection_past_its_ranges_is_refused_and_keeps_what_it_had() -> None:
    # r[9p2000l.server.lock]: ERROR for locks the server cannot record
    table = LockTable(max_ranges=3)
    me, also = OWNERS[0], OWNERS[1]
    assert table.set(KEY, me, RD, 0, 100)
    assert table.set(KEY, me, UN, 10, 11)  # 2 ranges
    assert table.set(KEY, also, RD, 200, 300)  # 3, the same connection
    assert not table.set(KEY, me, UN, 20, 21)  # a 4th by splitting
    assert table.locks(KEY, me) == [Lock(0, 10, RD, me), Lock(11, 100, RD, me)]
    assert table.set(KEY, me, UN, 0, 10)  # fewer ranges is always allowed
    assert table.set(KEY, OWNERS[2], RD, 0, 1)  # another connection counts its own
    table.release(KEY, "a")
    assert table.owners(KEY) == [OWNERS[2]] and table.ranges("a") == 0
