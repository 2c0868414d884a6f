"""@rpc.service: what a declaration derives (numbers, messages, name, version), and what it refuses."""

from __future__ import annotations

import re

import pytest
from services import Echo, EchoHttp, Toolbox

import jetwire
from jetwire import SchemaError, i32, rpc, u8


def test_method_ids_follow_declaration_order() -> None:
    """r[jetstream.rpc.numbering.method-ids] r[jetstream.rpc.numbering.order]"""
    spec = rpc.spec_of(Toolbox)
    assert [(m.name, m.request_type, m.response_type) for m in spec.methods] == [
        ("add", 102, 103), ("whoami", 104, 105), ("sleep", 106, 107), ("crash", 108, 109),
        ("bad_return", 110, 111), ("give_error", 112, 113),
    ]


def test_an_explicit_index_overrides_the_position() -> None:
    """r[jetstream.rpc.numbering.order]"""

    @rpc.service(version="1.0.0")
    class Svc:
        async def a(self) -> None: ...

        @rpc.method(index=5)
        async def b(self) -> None: ...

    assert [(m.name, m.request_type) for m in rpc.spec_of(Svc).methods] == [("a", 102), ("b", 112)]


def test_an_index_taken_twice_is_refused() -> None:
    with pytest.raises(SchemaError, match="index 0 is also a's"):
        @rpc.service(version="1.0.0")
        class Svc:
            async def a(self) -> None: ...

            @rpc.method(index=0)
            async def b(self) -> None: ...


def _many(n: int) -> type:
    namespace: dict[str, object] = {}
    source = "class Big:\n" + "".join(f"    async def m{i}(self) -> None: ...\n" for i in range(n))
    exec(source, namespace)
    big = namespace["Big"]
    assert isinstance(big, type)
    return big


def test_77_methods_fit_and_the_78th_is_refused() -> None:
    """r[jetstream.rpc.numbering.max-methods]: never wrapped past type 255."""
    spec = rpc.spec_of(rpc.service(version="1.0.0")(_many(77)))
    assert spec.methods[-1].request_type == 254 and spec.methods[-1].response_type == 255
    with pytest.raises(SchemaError, match="at most 77"):
        rpc.service(version="1.0.0")(_many(78))
    with pytest.raises(SchemaError, match="0 to 76"):
        rpc.method(index=77)


def test_request_body_is_the_wire_parameters_in_order() -> None:
    """r[jetstream.rpc.body.request] r[jetstream.rpc.context.not-on-wire]: a Context parameter
    is not a field; a method without wire parameters has an empty body."""
    spec = rpc.spec_of(Toolbox)
    add, whoami = spec.by_name["add"], spec.by_name["whoami"]
    assert spec.Tframe(1, add.request(1, -2)).encode() == bytes.fromhex("0f000000 66 0100 01000000 feffffff")
    assert whoami.params == () and whoami.context_params == ("ctx",)
    assert spec.Tframe(7, whoami.request()).encode() == bytes.fromhex("07000000 68 0700")


def test_response_body_is_exactly_the_value() -> None:
    """r[jetstream.rpc.body.response]: no wrapper bytes; None is an empty body."""
    spec = rpc.spec_of(Echo)
    ping, fail = spec.by_name["ping"], spec.by_name["fail"]
    assert spec.Rframe(1, ping.response("hi")).encode() == bytes.fromhex("0b000000 67 0100 0200 6869")
    assert spec.Rframe(2, fail.response()).encode() == bytes.fromhex("07000000 69 0200")


def test_name_and_version() -> None:
    """r[jetstream.rpc.version.string]: rs.jetstream.proto/<lowercased name>/<semver>+<8 hex digest>."""
    assert Echo.NAME == "echo" and EchoHttp.NAME == "echohttp"
    assert re.fullmatch(r"rs\.jetstream\.proto/echo/1\.0\.0\+[0-9a-f]{8}", Echo.VERSION)
    assert rpc.parse_version(Echo.VERSION) == ("echo", Echo.VERSION.split("/")[2])


def _digest(source: str) -> str:
    namespace: dict[str, object] = {"rpc": rpc, "i32": i32, "u8": u8, "jetwire": jetwire}
    exec("from __future__ import annotations\n" + source, namespace)
    svc = namespace["Svc"]
    return str(svc.VERSION).rsplit("+", 1)[1]  # type: ignore[attr-defined]


BASE = """
@rpc.service(version="1.0.0")
class Svc:
    async def add(self, a: i32, b: i32) -> i32: ...
    async def name(self, text: str) -> list[str]: ...
"""


def test_the_digest_ignores_names_and_follows_bytes() -> None:
    """The digest changes exactly when some message's bytes or numbers would."""
    base = _digest(BASE)
    assert _digest(BASE) == base
    renamed = BASE.replace("add(self, a: i32, b: i32)", "plus(self, x: i32, y: i32)").replace("Svc:", "Svc:  # x")
    assert _digest(renamed) == base
    assert _digest(BASE.replace("list[str]", "tuple[str, ...]")) == base  # the same bytes
    assert _digest(BASE.replace("b: i32", "b: u8")) != base
    assert _digest(BASE.replace("-> list[str]", "-> str")) != base
    swapped = BASE.replace("    async def add(self, a: i32, b: i32) -> i32: ...\n", "") + \
        "    async def add(self, a: i32, b: i32) -> i32: ...\n"
    assert _digest(swapped) != base  # the numbers moved
    assert _digest(BASE.replace('version="1.0.0"', 'version="2.0.0"')) == base  # the semver is not the digest


@pytest.mark.parametrize(("source", "message"), [
    ("class Svc:\n    def sync(self) -> None: ...", "is 'async def'"),
    ("class Svc:\n    async def f(self, x) -> None: ...", "no annotation"),
    ("class Svc:\n    async def f(self, x: int) -> None: ...", "request"),
    ("class Svc:\n    async def f(self) -> object: ...", "response"),
    ("class Svc:\n    async def f(self): ...", "no return annotation"),
    ("class Svc:\n    async def f(self, *args: int) -> None: ...", r"\*args"),
    ("class Svc:\n    async def close(self) -> None: ...", "client's own method"),
    ("class Svc:\n    pass", "at least one"),
])
def test_declarations_jetwire_cannot_serve_are_refused(source: str, message: str) -> None:
    namespace: dict[str, object] = {}
    exec(source, namespace)
    with pytest.raises(SchemaError, match=message):
        rpc.service(version="1.0.0")(namespace["Svc"])


def test_a_bad_semver_is_refused() -> None:
    with pytest.raises(SchemaError, match="SemVer"):
        rpc.service(version="1.0")(_many(1))
    with pytest.raises(SchemaError, match="build"):
        rpc.service(version="1.0.0+abc")(_many(1))
