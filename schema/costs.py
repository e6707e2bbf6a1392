"""The one weight table: what a field costs on its own, keyed like the permission table
(schema/permissions.py RULES): "Query.analytics", "Mutation.exportCreate", "Type.field". The cost
analysis (schema/extensions/cost.py) reads it for every field of an operation; a test walks the
schema and fails on a root field without a weight, or a weight for a field that does not exist.

A field not in the table weighs what DESIGN §4 says: an object 1 (a connection's edge 0), a
scalar or enum 0. Connections keep `first * (the cost of their selection)` on top of their own
weight. Weights stand for the work of a cache miss (most analytics answers are cached, but a
caller chooses ranges and days that miss): a cached answer is not cheaper to ask for.

How the weights were chosen, by what a field reads or does on top of fetching its own rows
(figures from this project's benches where there is one, else from what each one queries):
- DEFAULT 1: a single object, one page of an indexed list, a write of a few rows (`me`, `orders`,
  `productCreate`); the unit everything else is measured in.
- ROLLUP 10: one run of the metrics engine or one aggregate over the daily rollups (SalesDay,
  ProductDay, EventDay): its rows grow with days * products, not with the orders; the analytics
  bench puts a cold 365-day series at a few hundred ms on 1,000,000 orders against a few ms for a
  page of objects.
- SCAN 20: one aggregate over the raw orders or payments of a range of days (order, payment and
  customer figures, top customers): its rows grow with the orders in the range.
- HISTORY 30: one aggregate over every order ever placed, some with pandas on top (RFM segments,
  cohorts, lifetime value): the whole order history, whatever range is asked for.
- EVENTS 50: a funnel: the raw events of a range (the largest table), joined step by step.
- CHART 10: a chart drawn on the server by matplotlib (CPU, tens of ms a PNG).
- PASSWORD 10: an Argon2 password hash (19 MiB and tens of ms of CPU, by design).
- PROVISION 50: a new tenant schema cloned from the template (0.27-0.30 s in the provisioning
  bench) and a password hash.
- EXPORT 100: an export job: it reads every matching order in the worker (10-17 s CSV, minutes
  XLSX for 1,000,000 orders in the export bench); the request only starts it, the weight meters
  how often a caller may.
Composite answers weigh the sum of what they run (analyticsOverview: three engine runs, top
customers over the range and the RFM table). Per-object fields weigh the work they add to each
object (Product.analytics: two ProductDay queries per product). eventsTrack stays 1: a call holds
at most 500 events, and the REST endpoint charges 1 point per 1,000."""

from __future__ import annotations

DEFAULT = 1
ROLLUP = 10
SCAN = 20
HISTORY = 30
EVENTS = 50
CHART = 10
PASSWORD = 10
PROVISION = 50
EXPORT = 100

WEIGHTS: dict[str, int] = {
    # core
    "Query.node": DEFAULT,
    "Query.me": DEFAULT,
    "Subscription.serverTime": 0,  # a scalar: nothing but the clock
    # auth
    "Mutation.tokenCreate": PASSWORD,
    "Mutation.tokenRefresh": DEFAULT,
    "Mutation.tokenVerify": DEFAULT,
    "Mutation.tokenRevoke": DEFAULT,
    # the current tenant and its people
    "Query.tenant": DEFAULT,
    "Mutation.tenantUpdate": DEFAULT,
    "Query.members": DEFAULT,
    "Mutation.memberAdd": DEFAULT,
    "Mutation.memberUpdateRole": DEFAULT,
    "Mutation.memberRemove": DEFAULT,
    "Mutation.invitationAccept": PASSWORD,  # sets the newcomer's password
    "Query.apiKeys": DEFAULT,
    "Mutation.apiKeyCreate": DEFAULT,
    "Mutation.apiKeyRevoke": DEFAULT,
    "Query.auditLog": DEFAULT,
    # the platform
    "Mutation.tenantCreate": PROVISION,
    "Query.tenants": DEFAULT,
    "Mutation.platformTenantUpdate": DEFAULT,
    "Mutation.tenantSuspend": DEFAULT,
    "Mutation.tenantResume": DEFAULT,
    "Tenant.analyticsSummary": ROLLUP,  # the KPIs: one engine run in that tenant's schema
    # catalog
    "Query.products": DEFAULT,
    "Query.categories": DEFAULT,
    "Query.lowStockProducts": DEFAULT,  # an indexed filter on variants, paged
    "Query.topSellingProducts": ROLLUP,  # ProductDay summed over the range
    "Query.categoriesSummary": ROLLUP,  # ProductDay summed by category
    "Mutation.categoryCreate": DEFAULT,
    "Mutation.categoryUpdate": DEFAULT,
    "Mutation.categoryDelete": DEFAULT,
    "Mutation.productCreate": DEFAULT,
    "Mutation.productUpdate": DEFAULT,
    "Mutation.productDelete": DEFAULT,
    "Mutation.variantCreate": DEFAULT,
    "Mutation.variantUpdate": DEFAULT,
    "Mutation.variantDelete": DEFAULT,
    "Mutation.productImageUpload": DEFAULT,
    "Mutation.productImagesUpload": DEFAULT,
    "Mutation.productImageUpdate": DEFAULT,
    "Mutation.productImageDelete": DEFAULT,
    "Mutation.productImagesReorder": DEFAULT,
    "Product.analytics": 5,  # two ProductDay queries for each product: half a rollup read
    # customers
    "Query.customers": DEFAULT,
    "Query.vipCustomers": DEFAULT,  # kept statistics on the customer rows: a filtered page
    "Query.newCustomers": DEFAULT,
    "Query.inactiveCustomers": DEFAULT,
    "Query.topCustomers": SCAN,  # the orders of the range, grouped by customer
    "Query.customerAnalyticsSummary": SCAN,
    "Mutation.customerCreate": DEFAULT,
    "Mutation.customerUpdate": DEFAULT,
    "Mutation.customerDelete": DEFAULT,
    "Mutation.customerNoteAdd": DEFAULT,
    "Customer.analytics": 2,  # the customer's orders with their lines, prefetched a page at once
    "Customer.rfm": 5,  # a lookup in the RFM table, computed once per request (HISTORY)
    # orders
    "Query.orders": DEFAULT,
    "Query.recentOrders": DEFAULT,
    "Query.pendingOrders": DEFAULT,
    "Query.highValueOrders": DEFAULT,
    "Query.orderAnalytics": SCAN,  # the orders of the range
    "Mutation.orderCreate": DEFAULT,
    "Mutation.orderUpdateStatus": DEFAULT,
    "Mutation.orderCancel": DEFAULT,
    "Mutation.refundCreate": DEFAULT,
    # payments
    "Query.paymentSettings": DEFAULT,
    "Mutation.paymentSettingsUpdate": DEFAULT,
    "Query.payments": DEFAULT,
    "Mutation.paymentIntentCreate": DEFAULT,
    "Mutation.paymentConfirm": DEFAULT,
    "Mutation.paymentMarkPaid": DEFAULT,
    "Query.paymentMethods": DEFAULT,
    "Mutation.paymentMethodAttach": DEFAULT,
    "Mutation.paymentMethodDetach": DEFAULT,
    "Mutation.paymentMethodSetDefault": DEFAULT,
    "Query.paymentAnalytics": SCAN,  # the payments of the range
    # customer segments, cohorts, lifetime value
    "Query.customerSegments": HISTORY,  # the RFM table
    "Query.cohortRetention": HISTORY,
    "Query.customerLifetimeValue": HISTORY,
    # events and funnels
    "Mutation.eventsTrack": DEFAULT,
    "Query.funnel": EVENTS,
    # the metrics engine
    "Query.analytics": ROLLUP,
    "Query.analyticsCacheStats": DEFAULT,  # a few Redis counters
    # the dashboard's first paint: KPIs, series and top products (three engine runs), top
    # customers over the range and the segment mix (the RFM table)
    "Query.analyticsOverview": 3 * ROLLUP + SCAN + HISTORY,
    # dashboard widgets and custom reports
    "Query.widgets": DEFAULT,
    "Mutation.widgetCreate": DEFAULT,
    "Mutation.widgetUpdate": DEFAULT,
    "Mutation.widgetDelete": DEFAULT,
    "Mutation.widgetsReorder": DEFAULT,
    "Widget.data": ROLLUP,  # an engine run for each widget
    "Widget.chart": CHART,
    "Query.reports": DEFAULT,
    "Query.report": DEFAULT,
    "Query.reportRun": ROLLUP,  # an engine run
    "ReportRun.chart": CHART,
    "Mutation.reportCreate": DEFAULT,
    "Mutation.reportUpdate": DEFAULT,
    "Mutation.reportDelete": DEFAULT,
    # alerts and notifications
    "Query.alertRules": DEFAULT,
    "Mutation.alertRuleCreate": DEFAULT,
    "Mutation.alertRuleUpdate": DEFAULT,
    "Mutation.alertRuleDelete": DEFAULT,
    "Query.notifications": DEFAULT,
    "Mutation.notificationMarkRead": DEFAULT,
    "Subscription.notifications": DEFAULT,
    # live data: a subscription pays when it starts; each event is pushed, not asked for
    "Subscription.orderEvents": DEFAULT,
    "Subscription.liveMetrics": ROLLUP,  # the first snapshot: today's engine run
    "Query.realTimeMetrics": ROLLUP,  # today's engine run (cached) and the live visitors
    # exports
    "Query.exports": DEFAULT,
    "Mutation.exportCreate": EXPORT,
    "Subscription.exportProgress": DEFAULT,
}


def weight(parent: str, name: str, default: int) -> int:
    """What `parent.name` costs on its own; `default` for a field the table leaves out."""
    return WEIGHTS.get(f"{parent}.{name}", default)
