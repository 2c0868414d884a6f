"""``@wireenum`` as mypy sees it with the jetwire.mypy plugin (checked by ``mypy --strict``, not run).

Each ``# type: ignore[code]`` is an error the plugin must still report: with
``warn_unused_ignores`` (part of ``--strict``) an expected error that disappears fails the check.
"""

from __future__ import annotations

from typing import Optional

from typing_extensions import assert_type

from jetwire import WireFormat, u8, u16, u32, wireenum, wireformat


@wireenum
class Payment(WireFormat):
    class Cash:
        pass

    class Card:
        last4: str

    class Voucher:
        code: str
        cents: u32 = 0


@wireenum(frozen=True)
class Shape:
    """Inherits nothing: the plugin alone gives it and its variants WireFormat's methods."""

    class Circle:
        radius: u16

    class Rect:
        width: u16
        height: u16


class Labelled:
    label: str = ""


@wireenum
class Tree(WireFormat):
    """Variants that name the enum, a class declared after it, and a base class of their own."""

    class Leaf(Labelled):
        value: u8

    class Node:
        children: list[Tree]
        parent: Optional[Later] = None


@wireformat
class Later(WireFormat):
    root: Tree


def variants_are_dataclass_subclasses_of_their_enum() -> None:
    voucher = Payment.Voucher(code="SPRING", cents=250)
    assert_type(voucher, Payment.Voucher)
    assert_type(voucher.code, str)
    assert_type(voucher.cents, int)
    paid: Payment = voucher
    unit: Payment = Payment.Cash()
    assert_type(Payment.Voucher("SPRING"), Payment.Voucher)  # positional, with the default
    shapes: list[Shape] = [Shape.Circle(3), Shape.Rect(width=2, height=5)]
    tree: Tree = Tree.Node([Tree.Leaf(1), Tree.Node([])], Later(Tree.Leaf(2)))
    assert_type(Tree.Leaf(1).label, str)
    del paid, unit, shapes, tree


def wrong_use_is_still_an_error() -> None:
    Payment.Voucher(cod="SPRING")  # type: ignore[call-arg]
    Payment.Voucher(code=250)  # type: ignore[arg-type]
    Payment.Card()  # type: ignore[call-arg]
    Payment.Cash(1)  # type: ignore[call-arg]
    Shape.Circle(3).radius = 4  # type: ignore[misc]  # frozen=True reaches the variants
    circle: Shape.Circle = Shape.Rect(1, 2)  # type: ignore[assignment]
    payment: Payment = Shape.Circle(3)  # type: ignore[assignment]
    Payment.Card("1234").encode(1)  # type: ignore[call-arg]
    del circle, payment


def methods_on_enum_and_variants() -> None:
    data = Payment.Card("1234").encode()
    assert_type(data, bytes)
    assert_type(Payment.Card("1234").byte_size(), int)
    assert_type(Payment.decode(data), Payment)
    # A variant's decode reads the whole enum: any variant may come back.
    assert_type(Payment.Card.decode(data), Payment)
    assert_type(Payment.Card.decode_prefix(data, 0), tuple[Payment, int])
    assert_type(Shape.Circle(1).encode(), bytes)
    assert_type(Shape.decode(data), Shape)
    assert_type(Shape.Rect.decode_prefix(data), tuple[Shape, int])
    card: Payment.Card = Payment.Card.decode(data)  # type: ignore[assignment]
    del card


def describe(payment: Payment) -> str:
    match payment:
        case Payment.Cash():
            return "cash"
        case Payment.Card(last4):  # positional: the plugin gives variants __match_args__
            assert_type(last4, str)
            return f"card ending {last4}"
        case Payment.Voucher(code=code, cents=cents):
            assert_type(code, str)
            assert_type(cents, int)
            return f"{code}: {cents}"
    return "another subclass"  # mypy cannot know the enum is closed (docs/typing.md)


def area(shape: Shape) -> int:
    if isinstance(shape, Shape.Circle):
        assert_type(shape, Shape.Circle)
        return 3 * shape.radius * shape.radius
    if isinstance(shape, Shape.Rect):
        return shape.width * shape.height
    return 0
