"""Shows mypy the members of the error-code enums that `apps.common.errors.error_codes` builds.

`OrderErrorCode = error_codes("Order", "INSUFFICIENT_STOCK", include=[...])` makes its StrEnum at
import time from the common codes, those of the included domains and its own, so each domain
declares only what is its own. mypy reads the members of an enum made by a call only from a
literal `StrEnum("Name", [...])`; without this hook it sees a bare `type[StrEnum]` and refuses
every `OrderErrorCode.INVALID`. The hook builds the same members, in the same order, from the same
call: a code a domain does not declare is a mypy error, as it is an AttributeError at run time.
"""

from __future__ import annotations

from collections.abc import Callable

from mypy.nodes import (
    ARG_NAMED,
    ARG_POS,
    GDEF,
    EnumCallExpr,
    ListExpr,
    RefExpr,
    StrExpr,
    SymbolTableNode,
    TupleExpr,
    TypeInfo,
)
from mypy.plugin import DynamicClassDefContext, Plugin
from mypy.semanal import SemanticAnalyzer
from mypy.semanal_enum import EnumCallAnalyzer

ERROR_CODES = "apps.common.errors.error_codes"
COMMON = "apps.common.errors.CommonErrorCode"


def declare_error_codes(ctx: DynamicClassDefContext) -> None:
    call, api = ctx.call, ctx.api
    assert isinstance(api, SemanticAnalyzer)
    common = api.lookup_fully_qualified_or_none(COMMON)
    if common is None or not isinstance(common.node, TypeInfo):
        api.defer()
        return
    names = dict.fromkeys(common.node.enum_members)
    own: list[str] = []
    for arg, kind, arg_name in zip(call.args, call.arg_kinds, call.arg_names, strict=True):
        if kind == ARG_POS and isinstance(arg, StrExpr):
            own.append(arg.value)
        elif kind == ARG_NAMED and arg_name == "include" and isinstance(arg, (ListExpr, TupleExpr)):
            for item in arg.items:
                if not (isinstance(item, RefExpr) and isinstance(item.node, TypeInfo)):
                    api.defer()
                    return
                names.update(dict.fromkeys(item.node.enum_members))
        else:
            api.fail("error_codes() takes literal strings, and include= a list of enums", arg)
    names.update(dict.fromkeys(own[1:]))  # own[0] is the domain
    items = list(names)
    analyzer = EnumCallAnalyzer(api.options, api)
    info = analyzer.build_enum_call_typeinfo(ctx.name, items, "enum.StrEnum", call.line)
    call.analyzed = EnumCallExpr(info, items, [None] * len(items))
    call.analyzed.set_line(call)
    api.add_symbol_table_node(ctx.name, SymbolTableNode(GDEF, info))


class ErrorCodesPlugin(Plugin):
    def get_dynamic_class_hook(
        self, fullname: str
    ) -> Callable[[DynamicClassDefContext], None] | None:
        return declare_error_codes if fullname == ERROR_CODES else None


def plugin(version: str) -> type[Plugin]:
    return ErrorCodesPlugin
