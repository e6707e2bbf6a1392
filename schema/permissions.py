"""The one permission table: every root field (and every type that `node` can return) maps to
who may use it and on which host. The guard extension checks it once per operation, before
anything runs; a test walks the schema and fails on a field without a rule."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from apps.accounts.authentication import Principal
from apps.accounts.models import Role
from schema.errors import ApiError, bad_request, forbidden, unauthenticated

OWNER, ADMIN, STAFF, ANALYST, VIEWER = Role.OWNER, Role.ADMIN, Role.STAFF, Role.ANALYST, Role.VIEWER
MEMBERS = frozenset(Role.values)
MANAGERS = frozenset({OWNER, ADMIN})


@dataclass(frozen=True)
class Rule:
    where: str  # "tenant": a tenant host; "platform": the platform host; "any": either
    roles: frozenset[str] = frozenset()  # roles allowed on a tenant host
    anonymous: bool = False  # anyone, signed in or not
    platform_staff: bool = False  # on the platform host: platform staff only


def tenant(*roles: str) -> Rule:
    return Rule("tenant", roles=frozenset(roles))


ANYONE = Rule("any", anonymous=True)
SIGNED_IN = Rule("any", roles=MEMBERS)
ALL_MEMBERS = Rule("tenant", roles=MEMBERS)
PLATFORM_STAFF = Rule("platform", platform_staff=True)
PLATFORM_ANYONE = Rule("platform", anonymous=True)

RULES: dict[str, Rule] = {
    # core
    "Query.node": ALL_MEMBERS,
    "Query.me": SIGNED_IN,
    "Subscription.serverTime": ALL_MEMBERS,
    # auth
    "Mutation.tokenCreate": ANYONE,
    "Mutation.tokenRefresh": ANYONE,
    "Mutation.tokenVerify": ANYONE,
    "Mutation.tokenRevoke": ANYONE,
    # the current tenant and its people
    # members: their own tenant; platform staff on the platform host: any tenant, by id
    "Query.tenant": Rule("any", roles=MEMBERS, platform_staff=True),
    "Mutation.tenantUpdate": tenant(OWNER, ADMIN),
    "Query.members": ALL_MEMBERS,
    "Mutation.memberAdd": tenant(OWNER, ADMIN),
    "Mutation.memberUpdateRole": tenant(OWNER, ADMIN),
    "Mutation.memberRemove": tenant(OWNER, ADMIN),
    "Mutation.invitationAccept": Rule("tenant", anonymous=True),
    "Query.apiKeys": tenant(OWNER, ADMIN),
    "Mutation.apiKeyCreate": tenant(OWNER, ADMIN),
    "Mutation.apiKeyRevoke": tenant(OWNER, ADMIN),
    "Query.auditLog": tenant(OWNER, ADMIN),
    # the platform
    "Mutation.tenantCreate": PLATFORM_ANYONE,
    "Query.tenants": PLATFORM_STAFF,
    "Mutation.platformTenantUpdate": PLATFORM_STAFF,
    "Mutation.tenantSuspend": PLATFORM_STAFF,
    "Mutation.tenantResume": PLATFORM_STAFF,
    # catalog (schema/catalog.py)
    "Query.products": ALL_MEMBERS,
    "Query.categories": ALL_MEMBERS,
    "Query.lowStockProducts": ALL_MEMBERS,  # stock levels: readable on every product anyway
    "Query.topSellingProducts": tenant(
        OWNER, ADMIN, STAFF, ANALYST
    ),  # also guards Product.analytics
    "Query.categoriesSummary": tenant(OWNER, ADMIN, STAFF, ANALYST),
    "Mutation.categoryCreate": tenant(OWNER, ADMIN, STAFF),
    "Mutation.categoryUpdate": tenant(OWNER, ADMIN, STAFF),
    "Mutation.categoryDelete": tenant(OWNER, ADMIN, STAFF),
    "Mutation.productCreate": tenant(OWNER, ADMIN, STAFF),
    "Mutation.productUpdate": tenant(OWNER, ADMIN, STAFF),
    "Mutation.productDelete": tenant(OWNER, ADMIN, STAFF),
    "Mutation.variantCreate": tenant(OWNER, ADMIN, STAFF),
    "Mutation.variantUpdate": tenant(OWNER, ADMIN, STAFF),
    "Mutation.variantDelete": tenant(OWNER, ADMIN, STAFF),
    "Mutation.productImageUpload": tenant(OWNER, ADMIN, STAFF),
    "Mutation.productImagesUpload": tenant(OWNER, ADMIN, STAFF),
    "Mutation.productImageUpdate": tenant(OWNER, ADMIN, STAFF),
    "Mutation.productImageDelete": tenant(OWNER, ADMIN, STAFF),
    "Mutation.productImagesReorder": tenant(OWNER, ADMIN, STAFF),
    "Category": ALL_MEMBERS,
    "Product": ALL_MEMBERS,
    "Variant": ALL_MEMBERS,
    "ProductImage": ALL_MEMBERS,
    # customers (schema/customers.py)
    "Query.customers": ALL_MEMBERS,
    "Query.vipCustomers": ALL_MEMBERS,
    "Query.newCustomers": ALL_MEMBERS,
    "Query.inactiveCustomers": ALL_MEMBERS,
    "Query.topCustomers": tenant(OWNER, ADMIN, STAFF, ANALYST),
    "Query.customerAnalyticsSummary": tenant(OWNER, ADMIN, STAFF, ANALYST),
    "Mutation.customerCreate": tenant(OWNER, ADMIN, STAFF),
    "Mutation.customerUpdate": tenant(OWNER, ADMIN, STAFF),
    "Mutation.customerDelete": tenant(OWNER, ADMIN, STAFF),
    "Mutation.customerNoteAdd": tenant(OWNER, ADMIN, STAFF),
    "Customer": ALL_MEMBERS,
    "CustomerNote": tenant(OWNER, ADMIN, STAFF),
    # orders (schema/orders.py)
    "Query.orders": ALL_MEMBERS,
    "Query.recentOrders": ALL_MEMBERS,
    "Query.pendingOrders": ALL_MEMBERS,
    "Query.highValueOrders": ALL_MEMBERS,
    "Query.orderAnalytics": tenant(OWNER, ADMIN, STAFF, ANALYST),
    "Mutation.orderCreate": tenant(OWNER, ADMIN, STAFF),
    "Mutation.orderUpdateStatus": tenant(OWNER, ADMIN, STAFF),
    "Mutation.orderCancel": tenant(OWNER, ADMIN, STAFF),
    "Mutation.refundCreate": tenant(OWNER, ADMIN, STAFF),
    "Order": ALL_MEMBERS,
    "OrderLine": ALL_MEMBERS,
    "Refund": ALL_MEMBERS,
    # payments (schema/payments.py)
    "Query.paymentSettings": tenant(OWNER, ADMIN),
    "Mutation.paymentSettingsUpdate": tenant(OWNER),
    "Query.payments": ALL_MEMBERS,
    "Mutation.paymentIntentCreate": tenant(OWNER, ADMIN, STAFF),
    "Mutation.paymentConfirm": tenant(OWNER, ADMIN, STAFF),
    "Mutation.paymentMarkPaid": tenant(OWNER, ADMIN, STAFF),
    "Payment": ALL_MEMBERS,
    # payment methods (schema/payment_methods.py): card details are the customer's, so staff+ only
    "Query.paymentMethods": tenant(OWNER, ADMIN, STAFF),
    "Mutation.paymentMethodAttach": tenant(OWNER, ADMIN, STAFF),
    "Mutation.paymentMethodDetach": tenant(OWNER, ADMIN, STAFF),
    "Mutation.paymentMethodSetDefault": tenant(OWNER, ADMIN, STAFF),
    # payment analytics (schema/payment_analytics.py)
    "Query.paymentAnalytics": tenant(OWNER, ADMIN, STAFF, ANALYST),
    # customer segments, cohorts, lifetime value (schema/customer_segments.py)
    "Query.customerSegments": tenant(OWNER, ADMIN, STAFF, ANALYST),
    "Query.cohortRetention": tenant(OWNER, ADMIN, STAFF, ANALYST),
    "Query.customerLifetimeValue": tenant(OWNER, ADMIN, STAFF, ANALYST),
    # events and funnels (schema/events.py); API keys call eventsTrack with the `events` scope (FIELD_SCOPES)
    "Mutation.eventsTrack": tenant(OWNER, ADMIN, STAFF),
    "Query.funnel": tenant(OWNER, ADMIN, STAFF, ANALYST),
    # the metrics engine (schema/analytics.py)
    "Query.analytics": tenant(OWNER, ADMIN, STAFF, ANALYST),
    "Query.analyticsCacheStats": tenant(OWNER, ADMIN),
    # the dashboard's first paint (schema/analytics_overview.py); Tenant.analyticsSummary checks itself
    "Query.analyticsOverview": tenant(OWNER, ADMIN, STAFF, ANALYST),
    # dashboard widgets and custom reports (schema/dashboards.py, schema/reports.py): the services
    # decide whose dashboard or report a caller may change (shared widgets: owner, admin, analyst)
    "Query.widgets": tenant(OWNER, ADMIN, STAFF, ANALYST),
    "Mutation.widgetCreate": tenant(OWNER, ADMIN, STAFF, ANALYST),
    "Mutation.widgetUpdate": tenant(OWNER, ADMIN, STAFF, ANALYST),
    "Mutation.widgetDelete": tenant(OWNER, ADMIN, STAFF, ANALYST),
    "Mutation.widgetsReorder": tenant(OWNER, ADMIN, STAFF, ANALYST),
    "Widget": tenant(OWNER, ADMIN, STAFF, ANALYST),
    "Query.reports": tenant(OWNER, ADMIN, STAFF, ANALYST),
    "Query.report": tenant(OWNER, ADMIN, STAFF, ANALYST),
    "Query.reportRun": tenant(OWNER, ADMIN, STAFF, ANALYST),
    "Mutation.reportCreate": tenant(OWNER, ADMIN, STAFF, ANALYST),
    "Mutation.reportUpdate": tenant(OWNER, ADMIN, STAFF, ANALYST),
    "Mutation.reportDelete": tenant(OWNER, ADMIN, STAFF, ANALYST),
    "Report": tenant(OWNER, ADMIN, STAFF, ANALYST),
    # alerts and notifications (schema/alerts.py): rules are managed by owners, admins and analysts;
    # read, and notifications marked read (for the whole tenant), by every role that sees analytics
    "Query.alertRules": tenant(OWNER, ADMIN, STAFF, ANALYST),
    "Mutation.alertRuleCreate": tenant(OWNER, ADMIN, ANALYST),
    "Mutation.alertRuleUpdate": tenant(OWNER, ADMIN, ANALYST),
    "Mutation.alertRuleDelete": tenant(OWNER, ADMIN, ANALYST),
    "Query.notifications": tenant(OWNER, ADMIN, STAFF, ANALYST),
    "Mutation.notificationMarkRead": tenant(OWNER, ADMIN, STAFF, ANALYST),
    "Subscription.notifications": tenant(OWNER, ADMIN, STAFF, ANALYST),
    "AlertRule": tenant(OWNER, ADMIN, STAFF, ANALYST),
    "Notification": tenant(OWNER, ADMIN, STAFF, ANALYST),
    # live data (schema/live.py): order events for whoever may read orders, metrics for analytics roles
    "Subscription.orderEvents": ALL_MEMBERS,
    "Subscription.liveMetrics": tenant(OWNER, ADMIN, STAFF, ANALYST),
    "Query.realTimeMetrics": tenant(OWNER, ADMIN, STAFF, ANALYST),
    # exports (schema/exports.py): members who see analytics; each sees their own exports (owners and
    # admins all), as apps.exports.selectors.visible decides
    "Query.exports": tenant(OWNER, ADMIN, STAFF, ANALYST),
    "Mutation.exportCreate": tenant(OWNER, ADMIN, STAFF, ANALYST),
    "Subscription.exportProgress": tenant(OWNER, ADMIN, STAFF, ANALYST),
    "Export": tenant(OWNER, ADMIN, STAFF, ANALYST),
    # types `node` can return: who may fetch one by global id
    "Tenant": ALL_MEMBERS,
    "User": ALL_MEMBERS,
    "Member": ALL_MEMBERS,
    "ApiKey": tenant(OWNER, ADMIN),
    "AuditEntry": tenant(OWNER, ADMIN),
}

# customers: rules for fields inside the Customer type, which the guard does not see (it checks
# root fields and node types); the resolvers in schema/customers.py apply them. Contact details
# (email, phone, street address, notes) are for the roles that work with customers: viewers and
# analysts see customers with those redacted. Customer analytics are not for viewers.
CUSTOMER_CONTACTS = tenant(OWNER, ADMIN, STAFF)
CUSTOMER_ANALYTICS = tenant(OWNER, ADMIN, STAFF, ANALYST)

# What an API key's scopes must include for each kind of operation.
OPERATION_SCOPES = {"query": "read", "subscription": "read", "mutation": "write"}
# Root fields that take a scope of their own instead of their operation's.
FIELD_SCOPES = {"Mutation.eventsTrack": "events"}


def check(rule: Rule, principal: Principal, name: str) -> ApiError | None:
    """None when `principal` may use what `rule` guards, else the error to answer with."""
    on_tenant = principal.tenant is not None
    if rule.where == "tenant" and not on_tenant:
        return bad_request(f"{name} needs a tenant: use a tenant host or X-Tenant-ID.")
    if rule.where == "platform" and on_tenant:
        return bad_request(f"{name} is only served on the platform host.")
    if rule.anonymous:
        return None
    if not principal.is_authenticated:
        return unauthenticated()
    if rule.platform_staff and not on_tenant:
        return None if principal.is_platform_staff else forbidden("Platform staff only.")
    if on_tenant and principal.role not in rule.roles:
        return forbidden(f"Your role ({principal.role}) may not use {name}.")
    return None


def check_type(rule: Rule, principal: Principal, name: str) -> ApiError | None:
    """For objects fetched by global id through `node`: the type's roles, on tenant hosts."""
    if principal.tenant is not None and principal.role not in rule.roles and not rule.anonymous:
        return forbidden(f"Your role ({principal.role}) may not read {name}.")
    return None


def check_operation_scope(
    principal: Principal, operation: str, fields: Iterable[str] = ()
) -> ApiError | None:
    """The scopes the operation's root `fields` need (FIELD_SCOPES, else the operation's)."""
    scopes = {FIELD_SCOPES.get(name, OPERATION_SCOPES[operation]) for name in fields} or {
        OPERATION_SCOPES[operation]
    }
    for scope in sorted(scopes):
        if not principal.may(scope):
            return forbidden(f"This API key lacks the {scope!r} scope.")
    return None
