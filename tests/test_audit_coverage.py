"""Every GraphQL mutation that changes something writes an AuditEntry: who acted, what action,
which object, and the request id (issue 5, item 6). `CALLS` holds one successful call of each
mutation; a mutation added to the schema without an entry here fails
`test_every_mutation_is_covered`, so the proof keeps up as mutations are added."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from io import BytesIO
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.test import override_settings
from django.utils import timezone
from django_tenants.utils import schema_context, tenant_context

from apps.accounts import services as account_services
from apps.accounts.models import Membership, Role, User
from apps.alerts import services as alert_services
from apps.alerts import tasks as alert_tasks
from apps.analytics import dashboards
from apps.analytics import reports as analytics_reports
from apps.analytics.models import Report, Widget
from apps.audit.models import AuditEntry
from apps.catalog.models import Category, Product, Variant
from apps.customers.models import Customer
from apps.orders import services as order_services
from apps.orders.models import OrderStatus
from apps.payments import methods as payment_methods
from apps.payments import services as payment_services
from schema import schema
from tenants.models import Tenant
from tests.apps.catalog.factories import image_bytes
from tests.apps.orders import shop
from tests.apps.payments import fixtures as payment_fixtures
from tests.conftest import (
    PASSWORD,
    PLATFORM_HOST,
    GraphQLClient,
    Response,
    TenantFixture,
    gid,
    token_for,
)

PUBLIC = "public"
STAFF = "staff@platform.test"
SCHEMAS = (
    "alpha",
    PUBLIC,
)  # where entries may land: the tenant's schema, or public for the platform
PAYLOAD = "userErrors { field code message }"

# Mutations that change nothing, so they have nothing to audit.
READ_ONLY = {
    "tokenVerify",  # decodes the given JWT and says whether it is valid: no database row is touched
}


def _count(schema_name: str) -> int:
    with schema_context(schema_name):
        return AuditEntry.objects.count()


def _entries(schema_name: str, request_id: str) -> list[AuditEntry]:
    with schema_context(schema_name):
        return list(AuditEntry.objects.filter(request_id=request_id).order_by("id"))


@dataclass
class Call:
    """One mutation's call: `post` sends it (as `signed_in`, with `X-Request-ID: audit-<name>`),
    checks it succeeded, and notes who the entry should name and the audit counts just before."""

    gql: GraphQLClient
    alpha: TenantFixture
    name: str
    actor: str = ""
    before: dict[str, int] = field(default_factory=dict)

    @property
    def request_id(self) -> str:
        return f"audit-{self.name}"

    def token(self, email: str, *, platform: bool = False) -> str:
        return token_for(email, None if platform else self.alpha.tenant)

    def post(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        signed_in: str | None = None,
        actor: str | None = None,
        platform: bool = False,
        files: dict[str, tuple[str, bytes]] | None = None,
    ) -> dict[str, Any]:
        """The mutation's payload. `actor`: who the entry names when nobody is signed in."""
        token = self.token(signed_in, platform=platform) if signed_in else None
        self.actor = signed_in if actor is None else actor
        host = PLATFORM_HOST if platform else self.alpha.host
        self.before = {name: _count(name) for name in SCHEMAS}
        headers = {"X-Request-ID": self.request_id}
        if files:
            response = _multipart(self.gql, host, token, query, variables or {}, files, headers)
        else:
            response = self.gql.post(query, variables, host=host, token=token, headers=headers)
        assert response.errors == [], response.body
        payload = response.data[self.name]
        assert payload["userErrors"] == [], payload
        return payload


def _multipart(gql, host, token, query, variables, files, headers) -> Response:
    """A GraphQL multipart request (as tests.apps.catalog.factories.upload, with headers)."""
    form: dict[str, Any] = {
        "operations": json.dumps({"query": query, "variables": variables}),
        "map": json.dumps({str(index): [f"variables.{path}"] for index, path in enumerate(files)}),
    }
    for index, (name, content) in enumerate(files.values()):
        form[str(index)] = BytesIO(content)
        form[str(index)].name = name
    response = async_to_sync(gql.client.post)(
        "/graphql/", form, headers={"Host": host, "Authorization": f"Bearer {token}", **headers}
    )
    return Response(
        response.status_code, json.loads(response.content or b"{}"), dict(response.headers)
    )


# --- data made straight in alpha's schema ------------------------------------------------------------

OWNER, CLERK = (
    "owner@alpha.test",
    "staff@alpha.test",
)  # alpha's owner, and its member with the staff role
INVITEE = "invitee@example.com"


def _in_alpha(c: Call, make: Callable[[], Any]) -> Any:
    with tenant_context(c.alpha.tenant):
        return make()


def _category(c: Call) -> Category:
    return _in_alpha(c, lambda: Category.objects.create(name="Hats", slug="hats"))


def _product(c: Call) -> Product:
    return _in_alpha(c, lambda: shop.variant("12.00", stock=5).product)


def _variant(c: Call) -> Variant:
    return _in_alpha(c, lambda: shop.variant("12.00", stock=5))


def _customer(c: Call) -> Customer:
    return _in_alpha(c, lambda: Customer.objects.create(email="kim@example.com", first_name="Kim"))


def _order(c: Call, *, paid: bool = False):
    def make():
        order = shop.place(c.alpha, [(shop.variant("20.00", stock=5), 2)])
        if paid:
            order = order_services.update_status(
                actor=shop.actor(c.alpha), order_id=order.pk, status=OrderStatus.PAID
            )
        return order

    return _in_alpha(c, make)


def _images(c: Call, count: int) -> tuple[Product, list[str]]:
    """A product with `count` images, uploaded (without this call's request id) as the API does."""
    product = _product(c)
    query = "mutation($p: ID!, $f: [Upload!]!) { productImagesUpload(product: $p, files: $f) { images { id } } }"
    files = {f"f.{i}": (f"{i}.png", image_bytes("PNG", (32, 32))) for i in range(count)}
    response = _multipart(
        c.gql,
        c.alpha.host,
        c.token(CLERK),
        query,
        {"p": gid(c.alpha, "Product", product.pk), "f": [None] * count},
        files,
        {},
    )
    images = [image["id"] for image in response.data["productImagesUpload"]["images"]]
    assert len(images) == count, response.body
    return product, images


def _membership(c: Call, email: str, role: str = Role.VIEWER) -> Membership:
    user = User.objects.create_user(email=email, password=PASSWORD)
    return Membership.objects.create(user=user, tenant=c.alpha.tenant, role=role)


# --- one successful call of each mutation --------------------------------------------------------------
# Each returns (the schema the entry lands in, the action it starts with).


def _token_create(c: Call):
    c.post(
        f'mutation {{ tokenCreate(email: "{CLERK}", password: "{PASSWORD}") {{ token {PAYLOAD} }} }}',
        actor=CLERK,
    )
    return "alpha", "token.create"


def _token_refresh(c: Call):
    _, _, refresh = account_services.create_tokens(
        email=CLERK, password=PASSWORD, tenant=c.alpha.tenant
    )
    c.post(
        f"mutation($t: String!) {{ tokenRefresh(refreshToken: $t) {{ token {PAYLOAD} }} }}",
        {"t": refresh},
        actor=CLERK,
    )
    return "alpha", "token.refresh"


def _token_revoke(c: Call):
    _, _, refresh = account_services.create_tokens(
        email=CLERK, password=PASSWORD, tenant=c.alpha.tenant
    )
    c.post(
        f"mutation($t: String!) {{ tokenRevoke(refreshToken: $t) {{ revoked {PAYLOAD} }} }}",
        {"t": refresh},
        actor=CLERK,
    )
    return "alpha", "token.revoke"


def _member_add(c: Call):
    c.post(
        f'mutation {{ memberAdd(email: "new@example.com", role: ANALYST) {{ member {{ id }} {PAYLOAD} }} }}',
        signed_in=OWNER,
    )
    return "alpha", "member.add"


def _member_update_role(c: Call):
    member = _membership(c, "promoted@example.com")
    c.post(
        f"mutation($id: ID!) {{ memberUpdateRole(id: $id, role: STAFF) {{ member {{ role }} {PAYLOAD} }} }}",
        {"id": gid(c.alpha, "Member", member.pk)},
        signed_in=OWNER,
    )
    return "alpha", "member.change_role"


def _member_remove(c: Call):
    member = _membership(c, "leaving@example.com")
    c.post(
        f"mutation($id: ID!) {{ memberRemove(id: $id) {{ removedId {PAYLOAD} }} }}",
        {"id": gid(c.alpha, "Member", member.pk)},
        signed_in=OWNER,
    )
    return "alpha", "member.remove"


def _invitation_accept(c: Call):
    user = User.objects.create_user(
        email=INVITEE
    )  # as memberAdd leaves a new person: no password yet
    Membership.objects.create(user=user, tenant=c.alpha.tenant, role=Role.VIEWER)
    invitation = f"{user.pk}-{account_services.invitation_tokens.make_token(user)}"
    # Nobody is signed in: the entry names the invitee, who now has a password.
    c.post(
        f"""mutation($t: String!, $p: String!) {{
                 invitationAccept(token: $t, password: $p) {{ user {{ email }} {PAYLOAD} }} }}""",
        {"t": invitation, "p": "a-Long-pass-42"},
        actor=INVITEE,
    )
    return "alpha", "member.accept_invitation"


def _api_key_create(c: Call):
    c.post(
        f'mutation {{ apiKeyCreate(name: "ci", role: VIEWER, scopes: ["read"]) {{ secret {PAYLOAD} }} }}',
        signed_in=OWNER,
    )
    return "alpha", "api_key.create"


def _api_key_revoke(c: Call):
    key, _ = _in_alpha(
        c,
        lambda: account_services.create_api_key(
            actor=shop.actor(c.alpha, "owner"),
            tenant=c.alpha.tenant,
            name="old",
            role=Role.VIEWER,
            scopes=["read"],
        ),
    )
    c.post(
        f"mutation($id: ID!) {{ apiKeyRevoke(id: $id) {{ apiKey {{ id }} {PAYLOAD} }} }}",
        {"id": gid(c.alpha, "ApiKey", key.pk)},
        signed_in=OWNER,
    )
    return "alpha", "api_key.revoke"


def _tenant_create(c: Call):
    c.post(
        f"""mutation {{ tenantCreate(input: {{name: "Audited", slug: "audited", ownerEmail: "boss@audited.test",
               ownerPassword: "a-Long-pass-42"}}) {{ tenant {{ id }} {PAYLOAD} }} }}""",
        platform=True,
        actor="",
    )  # a sign-up: nobody is signed in, so the entry names no actor
    return PUBLIC, "tenant.create"


def _tenant_update(c: Call):
    c.post(
        f'mutation {{ tenantUpdate(input: {{name: "Alpha Audited"}}) {{ tenant {{ name }} {PAYLOAD} }} }}',
        signed_in=OWNER,
    )
    return "alpha", "tenant.update"


def _platform_tenant_update(c: Call):
    c.post(
        f'mutation($id: ID!) {{ platformTenantUpdate(id: $id, input: {{name: "Alpha P"}}) {{ '
        f"tenant {{ name }} {PAYLOAD} }} }}",
        {"id": gid(None, "Tenant", c.alpha.tenant.pk)},
        signed_in=STAFF,
        platform=True,
    )
    return PUBLIC, "tenant.update"


def _tenant_suspend(c: Call):
    c.post(
        f"mutation($id: ID!) {{ tenantSuspend(id: $id) {{ tenant {{ status }} {PAYLOAD} }} }}",
        {"id": gid(None, "Tenant", c.alpha.tenant.pk)},
        signed_in=STAFF,
        platform=True,
    )
    return PUBLIC, "tenant.suspended"


def _tenant_resume(c: Call):
    Tenant.objects.filter(pk=c.alpha.tenant.pk).update(status=Tenant.Status.SUSPENDED)
    c.post(
        f"mutation($id: ID!) {{ tenantResume(id: $id) {{ tenant {{ status }} {PAYLOAD} }} }}",
        {"id": gid(None, "Tenant", c.alpha.tenant.pk)},
        signed_in=STAFF,
        platform=True,
    )
    return PUBLIC, "tenant.active"


def _category_create(c: Call):
    c.post(
        f'mutation {{ categoryCreate(input: {{name: "Shoes"}}) {{ category {{ id }} {PAYLOAD} }} }}',
        signed_in=CLERK,
    )
    return "alpha", "category.create"


def _category_update(c: Call):
    c.post(
        f'mutation($id: ID!) {{ categoryUpdate(id: $id, input: {{name: "Caps"}}) {{ category '
        f"{{ name }} {PAYLOAD} }} }}",
        {"id": gid(c.alpha, "Category", _category(c).pk)},
        signed_in=CLERK,
    )
    return "alpha", "category.update"


def _category_delete(c: Call):
    c.post(
        f"mutation($id: ID!) {{ categoryDelete(id: $id) {{ deletedId {PAYLOAD} }} }}",
        {"id": gid(c.alpha, "Category", _category(c).pk)},
        signed_in=CLERK,
    )
    return "alpha", "category.delete"


def _product_create(c: Call):
    c.post(
        f'mutation {{ productCreate(input: {{name: "Scarf"}}) {{ product {{ id }} {PAYLOAD} }} }}',
        signed_in=CLERK,
    )
    return "alpha", "product.create"


def _product_update(c: Call):
    c.post(
        f'mutation($id: ID!) {{ productUpdate(id: $id, input: {{name: "Renamed"}}) {{ product '
        f"{{ name }} {PAYLOAD} }} }}",
        {"id": gid(c.alpha, "Product", _product(c).pk)},
        signed_in=CLERK,
    )
    return "alpha", "product.update"


def _product_delete(c: Call):
    c.post(
        f"mutation($id: ID!) {{ productDelete(id: $id) {{ deletedId {PAYLOAD} }} }}",
        {"id": gid(c.alpha, "Product", _product(c).pk)},
        signed_in=CLERK,
    )
    return "alpha", "product.delete"


def _variant_create(c: Call):
    c.post(
        f'mutation($p: ID!) {{ variantCreate(product: $p, input: {{sku: "AUDIT-1", price: '
        f'"9.50"}}) {{ variant {{ id }} {PAYLOAD} }} }}',
        {"p": gid(c.alpha, "Product", _product(c).pk)},
        signed_in=CLERK,
    )
    return "alpha", "variant.create"


def _variant_update(c: Call):
    c.post(
        f"mutation($id: ID!) {{ variantUpdate(id: $id, input: {{stock: 42}}) {{ variant {{ stock }} {PAYLOAD} }} }}",
        {"id": gid(c.alpha, "Variant", _variant(c).pk)},
        signed_in=CLERK,
    )
    return "alpha", "variant.update"


def _variant_delete(c: Call):
    c.post(
        f"mutation($id: ID!) {{ variantDelete(id: $id) {{ deletedId {PAYLOAD} }} }}",
        {"id": gid(c.alpha, "Variant", _variant(c).pk)},
        signed_in=CLERK,
    )
    return "alpha", "variant.delete"


def _product_image_upload(c: Call):
    c.post(
        f"mutation($p: ID!, $f: Upload!) {{ productImageUpload(product: $p, file: $f) {{ "
        f"image {{ id }} {PAYLOAD} }} }}",
        {"p": gid(c.alpha, "Product", _product(c).pk), "f": None},
        signed_in=CLERK,
        files={"f": ("photo.png", image_bytes("PNG", (32, 32)))},
    )
    return "alpha", "product_image.create"


def _product_images_upload(c: Call):
    c.post(
        f"mutation($p: ID!, $f: [Upload!]!) {{ productImagesUpload(product: $p, files: $f) {{ "
        f"images {{ id }} {PAYLOAD} }} }}",
        {"p": gid(c.alpha, "Product", _product(c).pk), "f": [None, None]},
        signed_in=CLERK,
        files={
            "f.0": ("a.png", image_bytes("PNG", (32, 32))),
            "f.1": ("b.png", image_bytes("PNG", (40, 30))),
        },
    )
    return "alpha", "product_image.create"


def _product_image_update(c: Call):
    _, (image,) = _images(c, 1)
    c.post(
        f'mutation($id: ID!) {{ productImageUpdate(id: $id, altText: "Front") {{ image {{ altText }} {PAYLOAD} }} }}',
        {"id": image},
        signed_in=CLERK,
    )
    return "alpha", "product_image.update"


def _product_image_delete(c: Call):
    _, (image,) = _images(c, 1)
    c.post(
        f"mutation($id: ID!) {{ productImageDelete(id: $id) {{ deletedId {PAYLOAD} }} }}",
        {"id": image},
        signed_in=CLERK,
    )
    return "alpha", "product_image.delete"


def _product_images_reorder(c: Call):
    product, images = _images(c, 2)
    c.post(
        f"mutation($p: ID!, $i: [ID!]!) {{ productImagesReorder(product: $p, images: $i) {{ "
        f"images {{ id }} {PAYLOAD} }} }}",
        {"p": gid(c.alpha, "Product", product.pk), "i": images[::-1]},
        signed_in=CLERK,
    )
    return "alpha", "product_image.reorder"


def _customer_create(c: Call):
    c.post(
        f'mutation {{ customerCreate(input: {{email: "lee@example.com"}}) {{ customer {{ id }} {PAYLOAD} }} }}',
        signed_in=CLERK,
    )
    return "alpha", "customer.create"


def _customer_update(c: Call):
    c.post(
        f'mutation($id: ID!) {{ customerUpdate(id: $id, input: {{firstName: "Kimberly"}}) {{ '
        f"customer {{ id }} {PAYLOAD} }} }}",
        {"id": gid(c.alpha, "Customer", _customer(c).pk)},
        signed_in=CLERK,
    )
    return "alpha", "customer.update"


def _customer_delete(c: Call):
    c.post(
        f"mutation($id: ID!) {{ customerDelete(id: $id) {{ deletedId {PAYLOAD} }} }}",
        {"id": gid(c.alpha, "Customer", _customer(c).pk)},
        signed_in=CLERK,
    )
    return "alpha", "customer.delete"


def _customer_note_add(c: Call):
    c.post(
        f'mutation($id: ID!) {{ customerNoteAdd(customerId: $id, body: "Called back") {{ note {{ id }} {PAYLOAD} }} }}',
        {"id": gid(c.alpha, "Customer", _customer(c).pk)},
        signed_in=CLERK,
    )
    return "alpha", "customer.note_add"


def _order_create(c: Call):
    lines = [{"variant": gid(c.alpha, "Variant", _variant(c).pk), "quantity": 1}]
    c.post(
        f"mutation($input: OrderCreateInput!) {{ orderCreate(input: $input) {{ order {{ id }} {PAYLOAD} }} }}",
        {"input": {"email": "buyer@example.com", "lines": lines}},
        signed_in=CLERK,
    )
    return "alpha", "order.create"


def _order_update_status(c: Call):
    c.post(
        f"mutation($id: ID!) {{ orderUpdateStatus(id: $id, status: PAID) {{ order {{ status }} {PAYLOAD} }} }}",
        {"id": gid(c.alpha, "Order", _order(c).pk)},
        signed_in=CLERK,
    )
    return "alpha", "order.update_status"


def _order_cancel(c: Call):
    c.post(
        f"mutation($id: ID!) {{ orderCancel(id: $id) {{ order {{ status }} {PAYLOAD} }} }}",
        {"id": gid(c.alpha, "Order", _order(c, paid=True).pk)},
        signed_in=CLERK,
    )
    return "alpha", "order.cancel"


def _refund_create(c: Call):
    c.post(
        f'mutation($o: ID!) {{ refundCreate(input: {{order: $o, amount: "5.00", reason: '
        f'"late"}}) {{ refund {{ id }} {PAYLOAD} }} }}',
        {"o": gid(c.alpha, "Order", _order(c, paid=True).pk)},
        signed_in=CLERK,
    )
    return "alpha", "refund.create"


def _payment_settings_update(c: Call):
    c.post(
        f"mutation {{ paymentSettingsUpdate(input: {{manualEnabled: true}}) {{ "
        f"paymentSettings {{ manualEnabled }} {PAYLOAD} }} }}",
        signed_in=OWNER,
    )
    return "alpha", "payment_settings.update"


def _payment_intent_create(c: Call):
    with override_settings(STRIPE_API_BASE=payment_fixtures.localstripe_url()):
        payment_fixtures.configure(c.alpha)
        c.post(
            f"mutation($o: ID!) {{ paymentIntentCreate(order: $o) {{ clientSecret {PAYLOAD} }} }}",
            {"o": gid(c.alpha, "Order", _order(c).pk)},
            signed_in=CLERK,
        )
    return "alpha", "payment.intent_create"


def _payment_confirm(c: Call):
    with override_settings(STRIPE_API_BASE=payment_fixtures.localstripe_url()):
        keys = payment_fixtures.configure(c.alpha)
        order = _order(c)
        payment, _ = _in_alpha(
            c, lambda: payment_services.create_intent(actor=shop.actor(c.alpha), order_id=order.pk)
        )
        method = keys.api().v1.payment_methods.create(
            params={
                "type": "card",
                "card": {
                    "number": "4242424242424242",
                    "exp_month": 12,
                    "exp_year": 2040,
                    "cvc": "123",
                },
            }
        )
        c.post(
            f"mutation($p: ID!, $m: String!) {{ paymentConfirm(payment: $p, paymentMethod: "
            f"$m) {{ payment {{ status }} {PAYLOAD} }} }}",
            {"p": gid(c.alpha, "Payment", payment.pk), "m": method.id},
            signed_in=CLERK,
        )
    return "alpha", "payment.confirm"


def _payment_mark_paid(c: Call):
    payment_fixtures.configure(c.alpha, stripe_enabled=False)
    c.post(
        f"mutation($o: ID!) {{ paymentMarkPaid(order: $o) {{ payment {{ id }} {PAYLOAD} }} }}",
        {"o": gid(c.alpha, "Order", _order(c).pk)},
        signed_in=CLERK,
    )
    return "alpha", "payment.mark_paid"


def _payment_method(c: Call, action: str):
    """paymentMethodAttach / Detach / SetDefault on a customer, with a card made in localstripe
    (attached first through the service, except for the attach itself)."""
    with override_settings(STRIPE_API_BASE=payment_fixtures.localstripe_url()):
        keys = payment_fixtures.configure(c.alpha)
        customer = _customer(c)
        method = (
            keys.api()
            .v1.payment_methods.create(
                params={
                    "type": "card",
                    "card": {
                        "number": "4242424242424242",
                        "exp_month": 12,
                        "exp_year": 2040,
                        "cvc": "123",
                    },
                }
            )
            .id
        )
        if c.name != "paymentMethodAttach":
            _in_alpha(
                c,
                lambda: payment_methods.attach(
                    actor=shop.actor(c.alpha), customer_id=customer.pk, payment_method=method
                ),
            )
        c.post(
            f"mutation($c: ID!, $m: String!) {{ {c.name}(customer: $c, paymentMethod: $m) {{ "
            f"paymentMethod {{ id }} {PAYLOAD} }} }}",
            {"c": gid(c.alpha, "Customer", customer.pk), "m": method},
            signed_in=CLERK,
        )
    return "alpha", action


def _payment_method_attach(c: Call):
    return _payment_method(c, "payment_method.attach")


def _payment_method_detach(c: Call):
    return _payment_method(c, "payment_method.detach")


def _payment_method_set_default(c: Call):
    return _payment_method(c, "payment_method.set_default")


def _refund_through_stripe(c: Call):
    with override_settings(STRIPE_API_BASE=payment_fixtures.localstripe_url()):
        keys = payment_fixtures.configure(c.alpha)
        order = _order(c)
        payment, _ = _in_alpha(
            c, lambda: payment_services.create_intent(actor=shop.actor(c.alpha), order_id=order.pk)
        )
        method = keys.api().v1.payment_methods.create(
            params={
                "type": "card",
                "card": {
                    "number": "4242424242424242",
                    "exp_month": 12,
                    "exp_year": 2040,
                    "cvc": "123",
                },
            }
        )
        _in_alpha(
            c,
            lambda: payment_services.confirm_payment(
                actor=shop.actor(c.alpha), payment_id=payment.pk, payment_method=method.id
            ),
        )
        c.post(
            f'mutation($o: ID!) {{ refundCreate(input: {{order: $o, amount: "5.00"}}) '
            f"{{ refund {{ stripeRefund {{ stripeId }} }} {PAYLOAD} }} }}",
            {"o": gid(c.alpha, "Order", order.pk)},
            signed_in=CLERK,
        )
    return "alpha", "payment.refund_create"


def _events_track(c: Call):
    # One entry per call, with the counts: the events themselves are data, not audited changes.
    now = timezone.now().isoformat()
    payload = c.post(
        f"mutation($e: [EventInput!]!) {{ eventsTrack(events: $e) {{ accepted rejected {PAYLOAD} }} }}",
        {
            "e": [
                {"type": "page_viewed", "time": now, "sessionId": "s-1"},
                {"type": "Bad Type", "time": now, "sessionId": "s-1"},
            ]
        },
        signed_in=CLERK,
    )
    assert (payload["accepted"], payload["rejected"]) == (1, 1), payload
    return "alpha", "events.track"


ANALYST = "analyst@alpha.test"
SALES_DEFINITION = {"metrics": ["gross_sales"], "dimension": "time", "range": "last_7_days"}


def _widget(c: Call, title: str = "Sales") -> Widget:
    return _in_alpha(
        c,
        lambda: dashboards.create_widget(
            actor=shop.actor(c.alpha, "analyst"),
            tenant=c.alpha.tenant,
            title=title,
            kind="line",
            definition=SALES_DEFINITION,
            shared=True,
        ),
    )


def _report(c: Call) -> Report:
    return _in_alpha(
        c,
        lambda: analytics_reports.create_report(
            actor=shop.actor(c.alpha, "analyst"),
            tenant=c.alpha.tenant,
            name="Week",
            definition=SALES_DEFINITION,
        ),
    )


def _widget_create(c: Call):
    c.post(
        f'mutation($d: JSON!) {{ widgetCreate(input: {{title: "Sales", kind: LINE, definition: $d}}) '
        f"{{ widget {{ id }} {PAYLOAD} }} }}",
        {"d": SALES_DEFINITION},
        signed_in=ANALYST,
    )
    return "alpha", "widget.create"


def _widget_update(c: Call):
    c.post(
        f'mutation($id: ID!) {{ widgetUpdate(id: $id, input: {{title: "Revenue"}}) {{ widget {{ id }} {PAYLOAD} }} }}',
        {"id": gid(c.alpha, "Widget", _widget(c).pk)},
        signed_in=ANALYST,
    )
    return "alpha", "widget.update"


def _widget_delete(c: Call):
    c.post(
        f"mutation($id: ID!) {{ widgetDelete(id: $id) {{ deletedId {PAYLOAD} }} }}",
        {"id": gid(c.alpha, "Widget", _widget(c).pk)},
        signed_in=ANALYST,
    )
    return "alpha", "widget.delete"


def _widgets_reorder(c: Call):
    widgets = [gid(c.alpha, "Widget", _widget(c, title).pk) for title in ("A", "B")]
    c.post(
        f"mutation($w: [ID!]!) {{ widgetsReorder(widgets: $w, shared: true) {{ widgets {{ id }} {PAYLOAD} }} }}",
        {"w": widgets[::-1]},
        signed_in=ANALYST,
    )
    return "alpha", "widget.reorder"


def _report_create(c: Call):
    c.post(
        f'mutation($d: JSON!) {{ reportCreate(input: {{name: "Week", definition: $d}}) {{ '
        f"report {{ id }} {PAYLOAD} }} }}",
        {"d": SALES_DEFINITION},
        signed_in=ANALYST,
    )
    return "alpha", "report.create"


def _report_update(c: Call):
    c.post(
        f'mutation($id: ID!) {{ reportUpdate(id: $id, input: {{name: "Month"}}) {{ report {{ id }} {PAYLOAD} }} }}',
        {"id": gid(c.alpha, "Report", _report(c).pk)},
        signed_in=ANALYST,
    )
    return "alpha", "report.update"


def _report_delete(c: Call):
    c.post(
        f"mutation($id: ID!) {{ reportDelete(id: $id) {{ deletedId {PAYLOAD} }} }}",
        {"id": gid(c.alpha, "Report", _report(c).pk)},
        signed_in=ANALYST,
    )
    return "alpha", "report.delete"


# alerts (schema/alerts.py)
ALERT_RULE = {
    "name": "Quiet",
    "metric": "orders",
    "comparison": "BELOW",
    "threshold": "1",
    "channels": ["IN_APP"],
}


def _alert_rule(c: Call):
    return _in_alpha(
        c,
        lambda: alert_services.create_rule(
            actor=shop.actor(c.alpha, "analyst"),
            values={
                "name": "Quiet",
                "metric": "orders",
                "comparison": "below",
                "window_days": 1,
                "threshold": "1000000",
                "channels": ["in_app"],
            },
        )[0],
    )


def _alert_rule_create(c: Call):
    c.post(
        f"mutation($i: AlertRuleInput!) {{ alertRuleCreate(input: $i) {{ alertRule {{ id }} {PAYLOAD} }} }}",
        {"i": ALERT_RULE},
        signed_in=ANALYST,
    )
    return "alpha", "alert_rule.create"


def _alert_rule_update(c: Call):
    c.post(
        f'mutation($id: ID!) {{ alertRuleUpdate(id: $id, input: {{name: "Slow"}}) {{ '
        f"alertRule {{ id }} {PAYLOAD} }} }}",
        {"id": gid(c.alpha, "AlertRule", _alert_rule(c).pk)},
        signed_in=ANALYST,
    )
    return "alpha", "alert_rule.update"


def _alert_rule_delete(c: Call):
    c.post(
        f"mutation($id: ID!) {{ alertRuleDelete(id: $id) {{ deletedId {PAYLOAD} }} }}",
        {"id": gid(c.alpha, "AlertRule", _alert_rule(c).pk)},
        signed_in=ANALYST,
    )
    return "alpha", "alert_rule.delete"


def _notification_mark_read(c: Call):
    _alert_rule(c)
    assert _in_alpha(c, alert_tasks.evaluate) == 1
    c.post(
        f"mutation {{ notificationMarkRead(all: true) {{ marked {PAYLOAD} }} }}", signed_in=ANALYST
    )
    return "alpha", "notification.mark_read"


def _export_create(c: Call):
    c.post(
        f'mutation {{ exportCreate(kind: ORDERS, format: CSV, filters: {{statuses: ["paid"]}}) '
        f"{{ export {{ id }} {PAYLOAD} }} }}",
        signed_in=ANALYST,
    )
    return "alpha", "export.create"


CALLS: dict[str, Callable[[Call], tuple[str, str]]] = {
    "alertRuleCreate": _alert_rule_create,
    "alertRuleUpdate": _alert_rule_update,
    "alertRuleDelete": _alert_rule_delete,
    "notificationMarkRead": _notification_mark_read,
    "tokenCreate": _token_create,
    "tokenRefresh": _token_refresh,
    "tokenRevoke": _token_revoke,
    "memberAdd": _member_add,
    "memberUpdateRole": _member_update_role,
    "memberRemove": _member_remove,
    "invitationAccept": _invitation_accept,
    "apiKeyCreate": _api_key_create,
    "apiKeyRevoke": _api_key_revoke,
    "tenantCreate": _tenant_create,
    "tenantUpdate": _tenant_update,
    "platformTenantUpdate": _platform_tenant_update,
    "tenantSuspend": _tenant_suspend,
    "tenantResume": _tenant_resume,
    "categoryCreate": _category_create,
    "categoryUpdate": _category_update,
    "categoryDelete": _category_delete,
    "productCreate": _product_create,
    "productUpdate": _product_update,
    "productDelete": _product_delete,
    "variantCreate": _variant_create,
    "variantUpdate": _variant_update,
    "variantDelete": _variant_delete,
    "productImageUpload": _product_image_upload,
    "productImagesUpload": _product_images_upload,
    "productImageUpdate": _product_image_update,
    "productImageDelete": _product_image_delete,
    "productImagesReorder": _product_images_reorder,
    "customerCreate": _customer_create,
    "customerUpdate": _customer_update,
    "customerDelete": _customer_delete,
    "customerNoteAdd": _customer_note_add,
    "orderCreate": _order_create,
    "orderUpdateStatus": _order_update_status,
    "orderCancel": _order_cancel,
    "refundCreate": _refund_create,
    "paymentSettingsUpdate": _payment_settings_update,
    "paymentIntentCreate": _payment_intent_create,
    "paymentConfirm": _payment_confirm,
    "paymentMarkPaid": _payment_mark_paid,
    "paymentMethodAttach": _payment_method_attach,
    "paymentMethodDetach": _payment_method_detach,
    "paymentMethodSetDefault": _payment_method_set_default,
    "widgetCreate": _widget_create,
    "widgetUpdate": _widget_update,
    "widgetDelete": _widget_delete,
    "widgetsReorder": _widgets_reorder,
    "reportCreate": _report_create,
    "reportUpdate": _report_update,
    "reportDelete": _report_delete,
    "eventsTrack": _events_track,
    "exportCreate": _export_create,
}


def test_every_mutation_is_covered():
    mutations = set(schema._schema.mutation_type.fields)
    assert not CALLS.keys() & READ_ONLY
    assert mutations - (set(CALLS) | READ_ONLY) == set(), (
        "a mutation with no audit check: add it to CALLS"
    )
    assert (set(CALLS) | READ_ONLY) - mutations == set(), (
        "CALLS names a mutation the schema no longer has"
    )


def test_read_only_mutations_write_nothing(gql, alpha):
    token = token_for(CLERK, alpha.tenant)
    before = {name: _count(name) for name in SCHEMAS}
    response = gql.post(
        "mutation($t: String!) { tokenVerify(token: $t) { valid } }",
        {"t": token},
        host=alpha.host,
        headers={"X-Request-ID": "audit-tokenVerify"},
    )
    assert response.data == {"tokenVerify": {"valid": True}}, response.body
    assert {name: _count(name) for name in SCHEMAS} == before


# Other paths through a mutation that write audit entries of their own.
VARIANTS: dict[str, tuple[str, Callable[[Call], tuple[str, str]]]] = {
    "refundCreate through Stripe": ("refundCreate", _refund_through_stripe),
}


@pytest.mark.parametrize("name", sorted(CALLS) + sorted(VARIANTS))
def test_each_mutation_writes_an_audit_entry(gql, alpha, name):
    mutation, make = VARIANTS.get(name, (name, CALLS.get(name)))
    call = Call(gql, alpha, mutation)
    schema_name, action = make(call)
    assert call.before, "the call did not go through Call.post"
    entries = _entries(schema_name, call.request_id)
    assert entries, f"{name} wrote no audit entry in {schema_name}"
    # Everything written while the mutation ran carries its request id.
    assert _count(schema_name) - call.before[schema_name] == len(entries)
    matching = [entry for entry in entries if entry.action.startswith(action)]
    assert matching, [entry.action for entry in entries]
    for entry in matching:
        assert entry.object_id and entry.object_type, entry
        assert entry.actor_email == call.actor, (entry.actor_email, call.actor)
        assert (entry.actor_id is not None) == bool(call.actor)
        assert entry.api_key_prefix == ""


def test_an_api_key_is_named_as_the_actor(gql, alpha):
    key, secret = _in_alpha(
        Call(gql, alpha, "setup"),
        lambda: account_services.create_api_key(
            actor=shop.actor(alpha, "owner"),
            tenant=alpha.tenant,
            name="sync",
            role=Role.STAFF,
            scopes=["read", "write"],
        ),
    )
    response = gql.post(
        'mutation { customerCreate(input: {email: "via-key@example.com"}) { userErrors { code } } }',
        host=alpha.host,
        api_key=secret,
        headers={"X-Request-ID": "audit-api-key"},
    )
    assert response.errors == [] and response.data["customerCreate"]["userErrors"] == []
    (entry,) = _entries("alpha", "audit-api-key")
    assert (entry.action, entry.api_key_prefix, entry.actor_email) == (
        "customer.create",
        key.prefix,
        "",
    )
    assert entry.object_id


REFUSED = [
    # (mutation, signed in as, query, variables, the error code): bad input, then roles that may not
    (
        "productCreate",
        CLERK,
        'mutation { productCreate(input: {name: "  "}) { userErrors { code } } }',
        {},
        "REQUIRED",
    ),
    (
        "customerCreate",
        CLERK,
        'mutation { customerCreate(input: {email: "nope"}) { userErrors { code } } }',
        {},
        "INVALID",
    ),
    (
        "orderUpdateStatus",
        CLERK,  # a pending order cannot jump to delivered
        "mutation($id: ID!) { orderUpdateStatus(id: $id, status: DELIVERED) { userErrors { code } } }",
        None,
        "ILLEGAL_TRANSITION",
    ),
    (
        "memberAdd",
        "admin@alpha.test",
        'mutation { memberAdd(email: "boss@example.com", role: OWNER) { userErrors { code } } }',
        {},
        "PERMISSION_DENIED",
    ),
    (
        "tenantCreate",
        None,
        """mutation { tenantCreate(input: {name: "A", slug: "admin", ownerEmail: "a@a.test",
                               ownerPassword: "a-Long-pass-42"}) { userErrors { code } } }""",
        {},
        "RESERVED",
    ),
    (
        "categoryCreate",
        "viewer@alpha.test",
        'mutation { categoryCreate(input: {name: "X"}) { userErrors { code } } }',
        {},
        "FORBIDDEN",
    ),
    (
        "tenantUpdate",
        CLERK,
        'mutation { tenantUpdate(input: {name: "X"}) { userErrors { code } } }',
        {},
        "FORBIDDEN",
    ),
]


@pytest.mark.parametrize(
    ("name", "who", "query", "variables", "code"), REFUSED, ids=[r[0] for r in REFUSED]
)
def test_a_refused_mutation_writes_no_audit_entry(gql, alpha, name, who, query, variables, code):
    call = Call(gql, alpha, name)
    if variables is None:
        variables = {"id": gid(alpha, "Order", _order(call).pk)}
    token = call.token(who) if who else None
    before = {schema_name: _count(schema_name) for schema_name in SCHEMAS}
    response = gql.post(
        query,
        variables,
        host=PLATFORM_HOST if name == "tenantCreate" else alpha.host,
        token=token,
        headers={"X-Request-ID": call.request_id},
    )
    payload = (response.data or {}).get(name)
    codes = [error["code"] for error in payload["userErrors"]] if payload else response.codes
    assert codes == [code], response.body
    assert {schema_name: _count(schema_name) for schema_name in SCHEMAS} == before
    assert all(_entries(schema_name, call.request_id) == [] for schema_name in SCHEMAS)


def test_a_money_change_is_audited_with_its_figures(gql, alpha):
    """A spot check that the entry says what changed, not only that something did."""
    call = Call(gql, alpha, "refundCreate")
    CALLS["refundCreate"](call)
    (entry,) = [e for e in _entries("alpha", call.request_id) if e.action == "refund.create"]
    assert entry.changes["amount"] == "5.00" and entry.changes["status"] == [
        "paid",
        "partially_refunded",
    ]
