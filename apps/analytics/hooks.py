"""What analytics announces to the apps above it (apps.common.hooks)."""

from apps.common.hooks import Hook

events_stored = Hook("analytics.events_stored")
"""A batch of events was stored (apps.analytics.events.ingest), sent in its transaction before
the figures' version bump is queued, so that after-commit receivers run before the bump's.
`tenant`: the Tenant; `now`: the time the batch was received; `visits`: (Unix second of the
event, session id or "", customer id or None) for each event stored."""

figures_changed = Hook("analytics.figures_changed")
"""A committed write changed the tenant's analytics figures and their data version went up
(apps.analytics.cache.bump_on_commit). Sent after that commit already: connect receivers without
`after_commit`. `schema`: the tenant's schema; `version`: its data version now."""
