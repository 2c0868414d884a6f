"""A mypy plugin that shows mypy what ``@wireformat`` and ``@wireenum`` make at run time.

Enable it in the mypy configuration::

    [tool.mypy]
    plugins = ["jetwire.mypy"]

``dataclass_transform`` already tells type checkers that a ``@wireformat`` class is a dataclass.
It cannot say what ``@wireenum`` does to the classes nested in the enum: each becomes a
dataclass *and a subclass of the enum*. This plugin says it, and gives decorated classes the
methods of ``WireFormat`` (``encode``, ``decode``...) even when they do not inherit it.

jetwire never imports this module; only mypy does, so mypy is not a runtime dependency. It
uses plugin interfaces that mypy 1.8 and later share.
"""

from __future__ import annotations

from collections.abc import Callable

from mypy.expandtype import expand_type
from mypy.mro import MroError, calculate_mro
from mypy.nodes import ARG_OPT, ARG_POS, Argument, ClassDef, Decorator, EllipsisExpr, FuncDef, TypeInfo, Var
from mypy.plugin import ClassDefContext, Plugin, SemanticAnalyzerPluginInterface
from mypy.plugins.common import add_method_to_class
from mypy.plugins.dataclasses import dataclass_class_maker_callback, dataclass_tag_callback
from mypy.semanal import is_trivial_body
from mypy.types import AnyType, CallableType, Instance, Type, TypeOfAny, get_proper_type
from mypy.typevars import fill_typevars

WIREFORMAT = "jetwire.runtime.decorators.wireformat"
WIREENUM = "jetwire.runtime.decorators.wireenum"
WIREFORMAT_CLASS = "jetwire.runtime.decorators.WireFormat"
RPC_SERVICE = "jetwire.rpc.service.service"


class JetwirePlugin(Plugin):
    def get_class_decorator_hook(self, fullname: str) -> Callable[[ClassDefContext], None] | None:
        if fullname == WIREENUM:
            # mypy would otherwise tag the enum as a dataclass, then wait for ever for the
            # dataclass fields of a class that has none before it could make the variants.
            return _leave_enum_untagged
        if fullname == WIREFORMAT:
            return dataclass_tag_callback
        if fullname == RPC_SERVICE:
            return _rpc_declaration
        return None

    def get_class_decorator_hook_2(self, fullname: str) -> Callable[[ClassDefContext], bool] | None:
        if fullname == WIREFORMAT:
            return _wireformat_class
        if fullname == WIREENUM:
            return _wireenum_class
        return None


def plugin(version: str) -> type[Plugin]:
    """mypy's entry point: the plugin class, whatever the mypy version."""
    return JetwirePlugin


def _leave_enum_untagged(ctx: ClassDefContext) -> None:
    pass


def _rpc_declaration(ctx: ClassDefContext) -> None:
    """An ``@rpc.service`` declaration's methods are signatures only (``async def f(...) -> int: ...``):
    the client and the implementation give them bodies. Without this, ``--strict`` reports each
    ``...`` as a missing return [empty-body]. Marked as the plugin's own, as the dataclass plugin
    marks what it writes, they stay ordinary methods: unlike abstract ones, an implementation
    may leave some out (the server answers them ``unimplemented``)."""
    for symbol in ctx.cls.info.names.values():
        node = symbol.node
        func = node.func if isinstance(node, Decorator) else node
        if isinstance(func, FuncDef) and func.is_coroutine and is_trivial_body(func.body):
            symbol.plugin_generated = True


def _wireformat_class(ctx: ClassDefContext) -> bool:
    if not dataclass_class_maker_callback(ctx):
        return False  # a field's type is not analysed yet: mypy calls again
    _add_wire_methods(ctx.api, ctx.cls, fill_typevars(ctx.cls.info), enum=False)
    return True


def _wireenum_class(ctx: ClassDefContext) -> bool:
    enum = ctx.cls.info
    ready = True
    for statement in ctx.cls.defs.body:
        if isinstance(statement, ClassDef) and not _make_variant(ctx, statement, enum):
            ready = False
    _add_wire_methods(ctx.api, ctx.cls, fill_typevars(enum), enum=True)
    return ready


def _make_variant(ctx: ClassDefContext, variant: ClassDef, enum: TypeInfo) -> bool:
    """Does to ``variant`` what ``decorators._make_enum`` does at run time: the enum joins its
    bases (after the ones it names), then it becomes a dataclass with the enum's options."""
    info = variant.info
    if not any(base.type is enum for base in info.bases):
        own_bases = [base for base in info.bases if base.type.fullname != "builtins.object"]
        original = info.bases
        original_mro = info.mro
        # As at run time, a variant of a generic enum subclasses the bare enum: Result[Any].
        unparametrised = Instance(enum, [AnyType(TypeOfAny.from_omitted_generics)] * len(enum.type_vars))
        info.bases = own_bases + [unparametrised]
        info.mro = []  # calculate_mro keeps an MRO already there
        try:
            calculate_mro(info)
        except MroError:
            info.bases, info.mro = original, original_mro
            ctx.api.fail(
                f'Cannot make "{info.name}" a variant of "{enum.name}": no consistent method '
                f"resolution order with its bases",
                variant,
            )
            return True
    # The enum's decorator is the reason: its options (frozen=True...) are the variant's.
    return dataclass_class_maker_callback(ClassDefContext(variant, ctx.reason, ctx.api))


def _add_wire_methods(api: SemanticAnalyzerPluginInterface, cls: ClassDef, owner: Type, enum: bool) -> None:
    """Gives ``cls`` the methods the decorator attaches at run time: the public methods of
    WireFormat, which declares them, with ``Self`` read as ``owner``.

    A class inheriting WireFormat has them already. An enum gets its classmethods (``decode``,
    ``decode_prefix``...) all the same: called on a variant, they read whichever variant the
    bytes hold, so they return the enum, not the ``Self`` that WireFormat would make the
    variant. A method the class defines itself is left alone, as at run time."""
    found = api.lookup_fully_qualified_or_none(WIREFORMAT_CLASS)
    if found is None or not isinstance(found.node, TypeInfo):
        return  # this jetwire has no WireFormat to copy from: nothing to add
    inherits = any(base.fullname == WIREFORMAT_CLASS for base in cls.info.mro)
    for name, template in found.node.names.items():
        node = template.node
        func = node.func if isinstance(node, Decorator) else node
        if name.startswith("_") or not isinstance(func, FuncDef):
            continue
        own = cls.info.names.get(name)
        if own is not None and not own.plugin_generated:
            continue
        if inherits and not (enum and func.is_class):
            continue
        signature = get_proper_type(func.type)
        if not isinstance(signature, CallableType):
            continue
        signature = expand_type(signature, {var.id: owner for var in signature.variables})
        arguments = [
            Argument(Var(arg_name or f"arg{i}", arg_type), arg_type,
                     EllipsisExpr() if kind == ARG_OPT else None, kind)
            for i, (arg_name, arg_type, kind) in enumerate(
                zip(signature.arg_names, signature.arg_types, signature.arg_kinds)
            )
            if i > 0 and kind in (ARG_POS, ARG_OPT)
        ]
        add_method_to_class(api, cls, name, arguments, signature.ret_type, is_classmethod=func.is_class)
