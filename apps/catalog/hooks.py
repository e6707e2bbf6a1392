"""The catalog writes that apps above the catalog react to (apps.common.hooks), sent in the
write's transaction."""

from apps.common.hooks import Hook

category_deleted = Hook("catalog.category_deleted")
"""A category was deleted; its products stay, without a category. `category_id`: its id."""

product_updated = Hook("catalog.product_updated")
"""A product's fields changed (`update_product`). `product`: the Product, saved; `changes`: what
changed, {field: [before, after]} as the audit log has it (`category` holds ids)."""

product_deleted = Hook("catalog.product_deleted")
"""A product was deleted, with its variants and images; order lines keep their snapshot of what
was sold. `product_id`: its id."""
