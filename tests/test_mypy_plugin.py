"""The jetwire.mypy plugin, run through mypy itself on small programs: what it lets through,
what it still rejects, and that jetwire never needs mypy at run time (docs/typing.md)."""

from __future__ import annotations

import importlib
import pathlib
import subprocess
import sys
import textwrap

import pytest
from mypy import api

import jetwire

ROOT = pathlib.Path(jetwire.__file__).parent.parent

PAYMENT = """
from __future__ import annotations
from typing import Optional
from typing_extensions import assert_type, reveal_type
from jetwire import WireFormat, u16, u32, wireenum, wireformat

@wireenum
class Payment(WireFormat):
    class Cash:
        pass
    class Card:
        last4: str
    class Voucher:
        code: str
        cents: u32 = 0

@wireformat
class Order(WireFormat):
    id: u32
    payment: Payment
"""


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    return tmp_path_factory.mktemp("mypy-cache")


def run_mypy(tmp_path: pathlib.Path, cache_dir: pathlib.Path, source: str, plugin: bool = True) -> list[str]:
    """mypy --strict's error lines for ``source``, with the plugin enabled as a user enables it."""
    config = tmp_path / "mypy.ini"
    lines = ["[mypy]", "strict = True", "python_version = 3.10", f"mypy_path = {ROOT}"]
    if plugin:
        lines.append("plugins = jetwire.mypy")
    config.write_text("\n".join(lines) + "\n")
    program = tmp_path / "program.py"
    program.write_text(textwrap.dedent(source))
    cache = cache_dir / ("with-plugin" if plugin else "without-plugin")
    stdout, stderr, _status = api.run(
        ["--config-file", str(config), "--cache-dir", str(cache), "--no-error-summary", "--hide-error-context",
         "--show-error-codes", str(program)]
    )
    assert not stderr, stderr
    return [line.split("program.py:", 1)[1] for line in stdout.splitlines() if "program.py:" in line]


def errors(output: list[str]) -> list[str]:
    return [line for line in output if ": error: " in line]


def lines_marked(source: str, marker: str = "# error") -> list[str]:
    """The line numbers (as mypy prints them) of the lines of ``source`` that carry ``marker``."""
    return [str(n) for n, line in enumerate(textwrap.dedent(source).splitlines(), 1) if marker in line]


def test_nested_variants_type_check_as_dataclass_subclasses_of_their_enum(tmp_path, cache_dir):
    source = PAYMENT + """
def use() -> Payment:
    order = Order(id=1, payment=Payment.Voucher(code="SPRING", cents=250))
    assert_type(Payment.Voucher("x"), Payment.Voucher)
    assert_type(Payment.Voucher("x").cents, int)
    unit: Payment = Payment.Cash()
    match order.payment:
        case Payment.Card(last4):
            assert_type(last4, str)
    return unit
"""
    assert run_mypy(tmp_path, cache_dir, source) == []
    # Without the plugin the same program is wrong in the ways the quickstart used to be.
    without = "\n".join(errors(run_mypy(tmp_path, cache_dir, source, plugin=False)))
    assert 'Unexpected keyword argument "code" for "Voucher"' in without
    assert 'incompatible type "Voucher"; expected "Payment"' in without
    assert "__match_args__" in without


def test_wrong_use_of_a_variant_is_still_an_error(tmp_path, cache_dir):
    source = PAYMENT + """
Payment.Voucher(cod="x")  # error
Payment.Voucher(code=1)  # error
Payment.Card()  # error
Payment.Cash(1)  # error
card: Payment.Card = Payment.Cash()  # error
order: Order = Order(1, Payment)  # error
"""
    found = errors(run_mypy(tmp_path, cache_dir, source))
    assert [line.split(":")[0] for line in found] == lines_marked(source), found
    assert 'Unexpected keyword argument "cod" for "Voucher"' in found[0]
    assert '"code" to "Voucher" has incompatible type "int"; expected "str"' in found[1]
    assert 'Missing positional argument "last4"' in found[2]
    assert "Too many arguments" in found[3]
    assert '(expression has type "Cash", variable has type "Card")' in found[4]
    assert "[arg-type]" in found[5]


def test_enum_options_reach_the_variants(tmp_path, cache_dir):
    source = """
from jetwire import u16, wireenum

@wireenum(frozen=True, order=True)
class Shape:
    class Circle:
        radius: u16

circle = Shape.Circle(1)
circle.radius = 2  # error
ordered: bool = circle < Shape.Circle(3)
"""
    found = errors(run_mypy(tmp_path, cache_dir, source))
    assert [line.split(":")[0] for line in found] == lines_marked(source), found
    assert "read-only" in found[0]


def test_reading_methods_return_the_enum_even_on_a_variant(tmp_path, cache_dir):
    """At run time ``Payment.Card.decode`` reads any variant: typing it ``Card`` would be a lie."""
    source = PAYMENT + """
import asyncio

async def read(reader: asyncio.StreamReader) -> None:
    assert_type(Payment.Card.decode(b""), Payment)
    assert_type(Payment.decode_prefix(b"", 0), tuple[Payment, int])
    assert_type(Payment.Card("1234").encode(), bytes)
    assert_type(await Payment.Voucher.decode_async(reader), Payment)
    card: Payment.Card = Payment.Card.decode(b"")  # error
"""
    found = errors(run_mypy(tmp_path, cache_dir, source))
    assert [line.split(":")[0] for line in found] == lines_marked(source), found
    assert '(expression has type "Payment", variable has type "Card")' in found[0]


def test_an_enum_declared_in_a_function_is_handled_too(tmp_path, cache_dir):
    source = """
from typing_extensions import assert_type
from jetwire import u16, wireenum

def f() -> None:
    @wireenum
    class Shape:
        class Circle:
            radius: u16
    shape: Shape = Shape.Circle(radius=1)
    assert_type(Shape.Circle.decode(b""), Shape)
    Shape.Circle(r=1)  # error
"""
    found = errors(run_mypy(tmp_path, cache_dir, source))
    assert [line.split(":")[0] for line in found] == lines_marked(source), found
    assert 'Unexpected keyword argument "r" for "Circle"' in found[0]


def test_a_class_that_does_not_inherit_wireformat_gets_its_methods(tmp_path, cache_dir):
    source = """
from typing_extensions import assert_type
from jetwire import u16, wireenum, wireformat

@wireformat
class Point:
    x: u16

@wireenum
class Shape:
    class Dot:
        at: Point

assert_type(Point(1).encode(), bytes)
assert_type(Point.decode(b""), Point)
assert_type(Point.decode_prefix(b""), tuple[Point, int])
assert_type(Shape.Dot(Point(1)).byte_size(), int)
assert_type(Shape.Dot.decode(b""), Shape)
Point.decode(1)  # error
Point(1).encode(2)  # error
"""
    found = errors(run_mypy(tmp_path, cache_dir, source))
    assert [line.split(":")[0] for line in found] == lines_marked(source), found
    assert "[arg-type]" in found[0] and "[call-arg]" in found[1]


def test_a_method_the_class_defines_itself_is_kept(tmp_path, cache_dir):
    source = """
from typing_extensions import assert_type
from jetwire import u16, wireformat

@wireformat
class Point:
    x: u16

    def encode(self) -> str:
        return "mine"

assert_type(Point(1).encode(), str)
"""
    assert run_mypy(tmp_path, cache_dir, source) == []


def test_a_variant_whose_bases_cannot_be_ordered_with_the_enum_is_named(tmp_path, cache_dir):
    source = """
from jetwire import wireenum

class A: ...
class B(A): ...

@wireenum
class Bad(B):
    class Variant(A):  # error
        pass
"""
    found = errors(run_mypy(tmp_path, cache_dir, source))
    assert [line.split(":")[0] for line in found] == lines_marked(source), found
    assert 'Cannot make "Variant" a variant of "Bad"' in found[0]


def test_the_cached_run_sees_what_the_first_run_saw(tmp_path, cache_dir):
    (tmp_path / "payments.py").write_text(textwrap.dedent(PAYMENT))
    source = """
from typing_extensions import assert_type
from payments import Payment
assert_type(Payment.Card.decode(b""), Payment)
p: Payment = Payment.Voucher(code="x")
Payment.Voucher(cod="x")
"""
    first = run_mypy(tmp_path, cache_dir, source)
    assert len(errors(first)) == 1 and "cod" in first[0]
    (tmp_path / "program.py").write_text("")  # touched, so mypy rechecks it against the cached payments
    assert run_mypy(tmp_path, cache_dir, source) == first


RPC_DECLARATION = """
from __future__ import annotations
from jetwire import i32, rpc

@rpc.service(version="1.0.0")
class Calc(rpc.Service):
    async def add(self, a: i32, b: i32) -> i32: ...
    async def name(self) -> str:
        \"\"\"A declaration's docstring is a body too.\"\"\"

@rpc.service
class Bare:
    async def get(self) -> list[str]: ...

class Partial(Calc):
    async def add(self, a: i32, b: i32) -> i32:
        return a + b
"""


def test_a_service_declaration_needs_no_bodies(tmp_path, cache_dir):
    """``async def add(...) -> i32: ...`` is a signature, not a method that forgets to return;
    an implementation may still leave methods out (the server answers them ``unimplemented``)."""
    source = RPC_DECLARATION + """
partial = Partial()

class Helper:
    async def oops(self) -> int: ...  # error
"""
    found = errors(run_mypy(tmp_path, cache_dir, source))
    assert [line.split(":")[0] for line in found] == lines_marked(source), found
    assert "[empty-body]" in found[0]
    without = errors(run_mypy(tmp_path, cache_dir, source, plugin=False))
    assert sum("[empty-body]" in line for line in without) == 4, without


def test_jetwire_never_imports_mypy():
    code = (
        "import sys, jetwire, jetwire.p9, jetwire.stdtypes, jetwire.runtime.decorators\n"
        "jetwire.Codec(jetwire.p9.Tframe)\n"
        "assert not [m for m in sys.modules if m == 'mypy' or m.startswith('mypy.')], 'mypy imported'\n"
        "assert 'jetwire.mypy' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


@pytest.mark.parametrize("name", sorted(p.stem for p in (ROOT / "tests" / "typing").glob("*.py")))
def test_the_typing_examples_are_valid_declarations_at_run_time(name, monkeypatch):
    """What tests/typing shows mypy must also be what the decorators accept."""
    monkeypatch.syspath_prepend(str(ROOT / "tests" / "typing"))
    monkeypatch.delitem(sys.modules, name, raising=False)
    importlib.import_module(name)
