"""What jetwire keeps on a class it knows: one :class:`ClassState`, in the class's own
``__dict__`` as ``__jetwire__`` (so a subclass never inherits its parent's codec or plans)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .plan import Node

if TYPE_CHECKING:
    from .lazy import OnFirstUse
    from .unit import Unit

STATE = "__jetwire__"


class ClassState:
    """Everything jetwire records on one class.

    ``kind`` is "struct" (``@wireformat``), "enum" (``@wireenum``), "variant" (a class nested
    in an enum), "frame" (a ``Frame[M]`` subclass) or "frame base" (``Frame`` itself)."""

    __slots__ = (
        "codec",
        "frame_message",
        "generated_init",
        "kind",
        "localns",
        "owner",
        "plain_init",
        "plans",
        "stubs",
        "units",
        "variants",
    )

    def __init__(
        self,
        kind: str,
        *,
        owner: type | None = None,
        generated_init: bool = False,
        localns: dict[str, Any] | None = None,
        plain_init: bool = False,
        frame_message: Any = None,
    ) -> None:
        self.kind = kind
        self.plans: dict[tuple[Any, ...], Node] = {}  # plan node by type arguments (() unless generic)
        self.variants: list[type] = []  # an enum's variant classes, in tag order
        self.owner = owner  # a variant's enum
        self.generated_init = generated_init  # __init__ is the one @dataclass wrote, not the user's
        self.localns: dict[str, Any] = {} if localns is None else localns  # names hints may use
        self.plain_init = plain_init  # __init__ only stores its arguments: decoding may store them
        self.frame_message = frame_message  # a frame's message union, as declared
        # The class's codec (a compiler.lazy.OnFirstUse of its unit), made by the first method
        # that needs it; a variant uses its enum's.
        self.codec: OnFirstUse[Unit] | None = None
        self.stubs: dict[str, Any] = {}  # methods standing in for generated ones, by name
        # The code generator's units of this class's plan nodes, by id of the node (each unit
        # holds its node, so the id stays its own): kept here, not on the immutable nodes, and
        # freed with the class.
        self.units: dict[int, Unit] = {}

    def __repr__(self) -> str:
        return f"<jetwire {self.kind} state>"


_DECLARED = frozenset({"struct", "enum", "variant"})


def class_state(cls: Any) -> ClassState | None:
    """The state ``cls`` itself holds (not one inherited), if any."""
    d = getattr(cls, "__dict__", None)
    if d is None:
        return None
    state = d.get(STATE)
    return state if isinstance(state, ClassState) else None


def class_info(cls: Any) -> ClassState | None:
    """The state of a ``@wireformat`` or ``@wireenum`` class or variant; None for any other."""
    state = class_state(cls)
    return state if state is not None and state.kind in _DECLARED else None


def frame_message(cls: Any) -> Any:
    """The message union of a ``Frame[M]`` subclass; None for any other class."""
    state = class_state(cls)
    return state.frame_message if state is not None else None


def set_state(cls: type, state: ClassState) -> None:
    type.__setattr__(cls, STATE, state)  # past a metaclass's __setattr__, as dataclasses' own fields
