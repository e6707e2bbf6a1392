"""What tenants announce to the apps above them (apps.common.hooks)."""

from apps.common.hooks import Hook

schema_created = Hook("tenants.schema_created")
"""A tenant's schema was created: `schema_name`. A schema of that name may have lived before (a
tenant dropped and made again), so what was kept under the name elsewhere must go. Sent outside
any transaction, so in-transaction receivers run at once."""
