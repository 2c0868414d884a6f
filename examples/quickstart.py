"""jetwire in one screen: declare a message family, see its bytes, read them back."""

from __future__ import annotations

from typing import Optional

import jetwire
from jetwire import WireFormat, u16, u32, u64, wireenum, wireformat


@wireformat(frozen=True)
class Item(WireFormat):
    sku: u32
    quantity: u16
    label: str


@wireenum
class Payment(WireFormat):
    """A tagged union: one byte says which variant follows (0, 1, 2 in definition order)."""

    class Cash:
        pass

    class Card:
        last4: str

    class Voucher:
        code: str
        cents: u32


@wireformat
class Order(WireFormat):
    id: u64
    customer: str
    note: Optional[str]
    items: list[Item]
    payment: Payment
    tags: dict[str, u32]


def main() -> None:
    order = Order(
        id=42,
        customer="Zoë",
        note=None,
        items=[Item(7, 2, "tea"), Item(9, 1, "scone")],
        payment=Payment.Voucher(code="SPRING", cents=250),
        tags={"table": 4, "priority": 1},
    )
    data = order.encode()
    print(f"{len(data)} bytes: {data.hex(' ')}\n")
    print(jetwire.explain(Order, data), "\n")

    back = Order.decode(data)
    assert back == order
    print("decoded:", back)
    match back.payment:
        case Payment.Voucher(code=code, cents=cents):
            print(f"paid with voucher {code} worth {cents} cents")

    try:
        Order.decode(data[:-3])
    except jetwire.DecodeError as exc:
        print("\ntruncated input:", exc)
    try:
        Item(7, 70000, "tea").encode()
    except jetwire.EncodeError as exc:
        print("out of range:", exc)


if __name__ == "__main__":
    main()
