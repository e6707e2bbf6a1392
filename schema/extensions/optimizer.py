"""strawberry-django's optimizer without its per-field middleware.

`DjangoOptimizerExtension.resolve` wraps every field of every object to optimise querysets that
plain resolvers return; strawberry-django fields and connections already optimise their own
querysets through the context variable `on_execute` sets. All our lists are such fields, so the
wrapper only costs time (a middleware call per field: thousands on a 100-order page)."""

from strawberry.extensions import SchemaExtension
from strawberry_django.optimizer import DjangoOptimizerExtension


class QueryOptimizer(DjangoOptimizerExtension):
    resolve = SchemaExtension.resolve  # no per-field middleware
