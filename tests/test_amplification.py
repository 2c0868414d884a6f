"""No input of a few bytes may make a decoder allocate without bound.

The adversarial inputs (the most objects per byte each type allows) are the cases of
``benchmarks/amplification.py``, which prints the same measure at full size as a table. Every
type is bounded per input byte, except elements that take no bytes (r[jetstream.wireformat.unit]
inside r[jetstream.wireformat.vec], set, map): those are bounded by the per-decode budget
(``max_zero_width_elements``), on the generated path and in the interpreter alike.
"""

from __future__ import annotations

import sys

import pytest

import jetwire as jw
from benchmarks.amplification import CASES, Case, Nothing, fast_decode, interpreted_decode, measure

COUNT = 2000  # elements per collection: the ratios are those of 65,535, in a fraction of the time
BUDGET = 20_000
# Bytes of memory per input byte. The worst measured (65,535 elements, Python 3.11) is a list of
# 1-byte structs: ~89 (a dataclass instance and its list slot per byte). Python 3.10 gives
# every instance a __dict__ of its own (3.11 keeps attributes inline): ~160 there.
OWN_DICT = 0 if sys.version_info >= (3, 11) else 80
PER_BYTE = 128 + OWN_DICT
# Bytes per zero-width element: an empty struct instance and its list slot, ~80. When the
# generated code gives up at the budget, what it made must be gone before the interpreter
# decodes again (else twice that).
PER_ZERO_WIDTH_ELEMENT = 120 + OWN_DICT

DECODERS = pytest.mark.parametrize("decoder", [fast_decode, interpreted_decode], ids=["fast", "interpreter"])


def _ids(cases: list[Case]) -> list[str]:
    return [c.name for c in cases]


BOUNDED = [c for c in CASES if not c.zero_width]
ZERO_WIDTH = [c for c in CASES if c.zero_width]


@DECODERS
@pytest.mark.parametrize("case", BOUNDED, ids=_ids(BOUNDED))
def test_memory_per_input_byte_is_bounded(case: Case, decoder: object) -> None:
    row = measure(case, decoder, COUNT, BUDGET, repeat=0)  # type: ignore[arg-type]
    assert row.outcome == "ok"
    assert row.per_byte <= PER_BYTE, f"{row.peak:,} bytes from {row.size:,}"


@DECODERS
@pytest.mark.parametrize("case", ZERO_WIDTH, ids=_ids(ZERO_WIDTH))
def test_zero_width_elements_cost_at_most_the_budget(case: Case, decoder: object) -> None:
    row = measure(case, decoder, COUNT, BUDGET, repeat=0)  # type: ignore[arg-type]
    assert row.peak <= BUDGET * PER_ZERO_WIDTH_ELEMENT, f"{row.peak:,} bytes from {row.size:,}"
    assert row.outcome.startswith("DecodeError") if case.refused else row.outcome == "ok"


def test_entries_a_users_codec_reads_nothing_for_count_against_the_budget() -> None:
    """A ``With`` codec may read no bytes for a value: the plan cannot tell, so each entry that
    read nothing spends one of the budget, on both paths."""
    codec = jw.Codec(list[list[Nothing]], max_zero_width_elements=5)
    assert codec.decode(bytes.fromhex("0200 0300 0200")) == [[0, 0, 0], [0, 0]]
    refused = bytes.fromhex("0200 0300 0300")
    with pytest.raises(jw.DecodeError) as fast:
        codec.decode(refused)
    assert (fast.value.path, fast.value.offset) == ("list[list[ReadsNothing]][1][2]", 6)
    assert "zero-width" in fast.value.reason
    assert str(fast.value) in codec.explain(refused)
    with pytest.raises(jw.DecodeError) as prefixed:
        codec.decode_prefix(refused)
    assert str(prefixed.value) == str(fast.value)
    # entries that read bytes spend nothing
    keyed = jw.Codec(dict[jw.u8, Nothing], max_zero_width_elements=0)
    assert keyed.decode(bytes.fromhex("0200 01 02")) == {1: 0, 2: 0}


@pytest.mark.parametrize("buffer", [bytes, bytearray], ids=["bytes", "bytearray"])
def test_a_value_with_bytes_left_over_is_gone_before_the_interpreter_decodes_again(buffer: type) -> None:
    """The budget's worth of zero-width elements and one byte too many (the fuzzer's 38-byte
    ZeroWidth input): the generated code makes every element and finds the byte left over. Were
    the value still held while anything decoded again, the decode would peak at twice the
    budget's memory."""
    from benchmarks.amplification import Blank, _at_budget

    def decoder(case: Case, budget: int) -> object:
        codec = jw.Codec(case.type, max_zero_width_elements=budget)
        return lambda data: codec.decode(buffer(data))

    case = Case("left over", list[list[Blank]], lambda count, budget: _at_budget(count, budget) + b"\x00",
                zero_width=True, refused=True)
    row = measure(case, decoder, COUNT, BUDGET, repeat=0)  # type: ignore[arg-type]
    assert row.outcome.startswith("DecodeError")
    assert row.peak <= BUDGET * PER_ZERO_WIDTH_ELEMENT, f"{row.peak:,} bytes for {BUDGET:,} elements"


@pytest.mark.parametrize("buffer", [bytes, bytearray], ids=["bytes", "bytearray"])
def test_a_value_with_bytes_left_over_is_built_once(buffer: type) -> None:
    """The generated code found where the value ends: the interpreter decoded it all again (every
    zero-width element built twice, up to the budget's million) only to say the same."""
    built = [0]

    @jw.wireformat
    class Counted:
        def __post_init__(self) -> None:
            built[0] += 1

    @jw.wireformat
    class Many:
        items: list[Counted]

    data = Many([Counted() for _ in range(1000)]).encode() + b"\x00\x00"
    built[0] = 0
    with pytest.raises(jw.DecodeError) as info:
        Many.decode(buffer(data))
    assert (info.value.reason, info.value.path, info.value.offset) == (
        "2 bytes left over after a complete Many", "Many", len(data) - 2)
    assert built[0] == 1000
