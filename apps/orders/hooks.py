"""The order writes that apps above orders react to (apps.common.hooks). Each is sent last in the
write's transaction, after the customer statistics, so in-transaction receivers take their locks
after every lock of the write (apps.orders.services: one lock order, no deadlocks)."""

from apps.common.hooks import Hook

order_placed = Hook("orders.order_placed")
"""An order was placed (`create_order`). `order`: the Order, its lines saved."""

order_status_changed = Hook("orders.order_status_changed")
"""An order moved one step along pending → paid → fulfilled → delivered (`update_status`).
`order`: the Order, saved in its new status; `before`: the status it left."""

order_cancelled = Hook("orders.order_cancelled")
"""An order was cancelled (`cancel_order`), refunded in full first when it was paid. `order`:
the Order, saved as cancelled; `before`: the status it left."""

refund_made = Hook("orders.refund_made")
"""Money was given back on an order that stays (`create_refund`; a cancellation's refund is part
of `order_cancelled`). `refund`: the Refund, its lines saved; `refund.order` is the Order, saved
in the status the refund moved it to."""
