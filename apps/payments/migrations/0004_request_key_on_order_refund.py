"""The request key of a refund moves from the Stripe refund to the order refund it carries out,
so `refundCreate` takes one key for every refund, through Stripe or not."""

from django.db import migrations


def keys_to_order_refunds(apps, schema_editor):
    StripeRefund = apps.get_model("payments", "StripeRefund")
    Refund = apps.get_model("orders", "Refund")
    for order_refund_id, key in (
        StripeRefund.objects.exclude(request_key="").exclude(order_refund=None).values_list("order_refund_id", "request_key")
    ):
        Refund.objects.filter(pk=order_refund_id).update(request_key=key)


class Migration(migrations.Migration):

    dependencies = [
        ("payments", "0003_merge_0002_payment_methods_0002_stripe_refunds"),
        ("orders", "0003_refund_request_key"),
    ]

    operations = [
        migrations.RunPython(keys_to_order_refunds, migrations.RunPython.noop),
        migrations.RemoveConstraint(model_name="striperefund", name="stripe_refund_request_key_unique"),
        migrations.RemoveField(model_name="striperefund", name="request_key"),
    ]
