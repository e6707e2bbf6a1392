"""Document limits: depth, aliases and NUL-free string literals (tokens are limited by the
parser, MaxTokensLimiter).

strawberry's QueryDepthLimiter and MaxAliasesLimiter build a new rule class for every request,
so a validation cache never sees the same rules twice. These are built once per limit value."""

from functools import cache

from django.conf import settings
from graphql import ValidationRule
from strawberry.extensions import AddValidationRules
from strawberry.extensions.max_aliases import create_validator as aliases_rule
from strawberry.extensions.query_depth_limiter import create_validator as depth_rule

from schema.extensions.strings import NoNulInStringLiterals


@cache
def _rules(max_depth: int, max_aliases: int) -> tuple[type[ValidationRule], ...]:
    return depth_rule(max_depth, None, None), aliases_rule(max_aliases), NoNulInStringLiterals


class DocumentLimits(AddValidationRules):
    def __init__(self) -> None:
        super().__init__(list(_rules(settings.GRAPHQL_MAX_DEPTH, settings.GRAPHQL_MAX_ALIASES)))
