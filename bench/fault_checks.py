"""What bench/faults.py verifies once the faults have stopped and the work has settled: from the
tenant's rows and from localstripe (where the money is), that each operation the workload meant
happened exactly once, amounts to the cent.

- order: one Order per client key (kept in `note`); none is lost, two is duplicated.
- payment: one succeeded PaymentIntent at Stripe for the order, of its total, and one succeeded
  Payment here; a second succeeded intent is money taken twice.
- refund: one order refund per requestKey, of the amount asked, carried out by one Stripe refund
  here that exists at Stripe with that amount; every refund at Stripe of the bench's intents is
  one the workload meant (an API refund or a dashboard refund), or it is a duplicate.
- webhook: each event id stored once, a replay answered as a duplicate; a dashboard refund is
  recorded once (one Stripe refund row for its id).
- export: the export the operation ended with is DONE with its file in storage, of its size;
  an export row no answer handed out is a duplicate (asked for by an attempt whose answer was
  lost). FAILED exports, files in storage no export names and temporary files left by killed
  workers are reported beside."""

from __future__ import annotations

import collections
import os
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.db.models import Count
from django_tenants.utils import tenant_context

from apps.common import global_ids
from apps.exports import files
from apps.exports.models import Export, ExportStatus
from apps.orders.models import Order
from apps.orders.models import Refund as OrderRefund
from apps.payments.models import Payment, PaymentStatus, StripeRefund, WebhookEvent
from bench.fault_client import Ledger, LocalStripe, Operation
from bench.fault_processes import Fault

KINDS = ("order", "payment", "refund", "export", "webhook")


@dataclass
class Finding:
    verdict: str  # lost, duplicated or mismatched
    kind: str
    key: str
    what: str
    operation: Operation | None = None


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)

    def add(
        self, verdict: str, kind: str, key: str, what: str, operation: Operation | None = None
    ) -> None:
        self.findings.append(Finding(verdict, kind, key, what, operation))

    def count(self, verdict: str) -> int:
        return sum(finding.verdict == verdict for finding in self.findings)


def _cents(amount: Any) -> int:
    return int(Decimal(str(amount)) * 100)


def check(*, tenant: Any, ledger: Ledger, stripe: LocalStripe, temp_dir: Path) -> Report:
    report = Report()
    schema = tenant.schema_name

    def pk(global_id: str) -> int:
        return global_ids.decode(global_id, schema)[1]

    with tenant_context(tenant):
        _orders(report, ledger)
        _payments(report, ledger, stripe, schema, pk)
        _refunds(report, ledger, stripe)
        _webhooks(report, ledger)
        _exports(report, ledger, schema, pk)
    report.notes["temp_files_left"] = sorted(
        str(path) for path in temp_dir.rglob("*") if path.is_file()
    )
    return report


def _orders(report: Report, ledger: Ledger) -> None:
    operations = ledger.of("order")
    placed = collections.Counter(
        Order.objects.filter(note__in=[op.key for op in operations]).values_list("note", flat=True)
    )
    for op in operations:
        if placed[op.key] == 0:
            report.add("lost", "order", op.key, "no order with this client key", op)
        elif placed[op.key] > 1:
            report.add(
                "duplicated", "order", op.key, f"{placed[op.key]} orders with this client key", op
            )


def _payments(report: Report, ledger: Ledger, stripe: LocalStripe, schema: str, pk) -> None:
    intents = collections.defaultdict(list)
    for intent in stripe.intents():
        if (intent.get("metadata") or {}).get("tenant") == schema:
            intents[intent["metadata"].get("order_id")].append(intent)
    for op in ledger.of("payment"):
        order = Order.objects.get(pk=pk(op.intent["order"]))
        taken = [intent for intent in intents[str(order.pk)] if intent["status"] == "succeeded"]
        here = Payment.objects.filter(order=order, status=PaymentStatus.SUCCEEDED).count()
        if not taken or not here or order.paid_at is None:
            report.add(
                "lost",
                "payment",
                op.key,
                f"{len(taken)} succeeded intents at Stripe, {here} succeeded "
                f"payments here, order paid_at {order.paid_at}",
                op,
            )
        elif len(taken) > 1 or here > 1:
            report.add(
                "duplicated",
                "payment",
                op.key,
                f"{len(taken)} succeeded intents at Stripe "
                f"({', '.join(i['id'] for i in taken)}), {here} succeeded payments here",
                op,
            )
        for intent in taken:
            if intent["amount"] != _cents(order.total):
                report.add(
                    "mismatched",
                    "payment",
                    op.key,
                    f"{intent['id']} took {intent['amount']} cents for an order of {order.total}",
                    op,
                )


def _refunds(report: Report, ledger: Ledger, stripe: LocalStripe) -> None:
    meant: dict[str, dict[str, int]] = collections.defaultdict(
        dict
    )  # intent: {stripe refund id: cents}
    for op in ledger.of("refund"):
        rows = list(OrderRefund.objects.filter(request_key=op.key))
        carried = list(StripeRefund.objects.filter(order_refund__request_key=op.key))
        if not rows or not carried:
            report.add(
                "lost",
                "refund",
                op.key,
                f"{len(rows)} order refunds, {len(carried)} Stripe refunds "
                "recorded for this requestKey",
                op,
            )
            continue
        if len(rows) > 1 or len(carried) > 1:
            report.add(
                "duplicated",
                "refund",
                op.key,
                f"{len(rows)} order refunds, {len(carried)} Stripe "
                "refunds recorded for this requestKey",
                op,
            )
        if rows[0].amount != Decimal(op.intent["amount"]):
            report.add(
                "mismatched",
                "refund",
                op.key,
                f"refunded {rows[0].amount}, asked {op.intent['amount']}",
                op,
            )
        for refund in carried:
            meant[op.intent["intent"]][refund.stripe_id] = _cents(op.intent["amount"])
    for op in ledger.of("webhook"):
        dashboard = op.intent.get("dashboard_refund")
        if dashboard:
            meant[op.intent["intent"]][dashboard["id"]] = _cents(dashboard["amount"])
            rows = StripeRefund.objects.filter(stripe_id=dashboard["id"]).count()
            if rows != 1:
                report.add(
                    "lost" if rows == 0 else "duplicated",
                    "webhook",
                    op.key,
                    f"dashboard refund {dashboard['id']} recorded {rows} times",
                    op,
                )
    for intent in {op.intent["intent"] for op in ledger.of("refund")} | set(meant):
        at_stripe = {refund["id"]: refund["amount"] for refund in stripe.refunds_of(intent)}
        for refund_id, cents in at_stripe.items():
            if refund_id not in meant[intent]:
                report.add(
                    "duplicated",
                    "refund",
                    intent,
                    f"refund {refund_id} of {cents} cents at Stripe was "
                    "never meant (a second refund for one request?)",
                )
            elif meant[intent][refund_id] != cents:
                report.add(
                    "mismatched",
                    "refund",
                    intent,
                    f"refund {refund_id}: {cents} cents at Stripe, "
                    f"{meant[intent][refund_id]} meant",
                )
        for refund_id in set(meant[intent]) - set(at_stripe):
            report.add(
                "lost", "refund", intent, f"refund {refund_id} recorded here is not at Stripe"
            )
        payment = Payment.objects.filter(stripe_id=intent).first()
        if payment is not None and _cents(payment.amount_refunded) != sum(at_stripe.values()):
            report.add(
                "mismatched",
                "refund",
                intent,
                f"payment says {payment.amount_refunded} refunded, "
                f"Stripe {sum(at_stripe.values())} cents",
            )


def _webhooks(report: Report, ledger: Ledger) -> None:
    operations = ledger.of("webhook")
    stored = dict(
        WebhookEvent.objects.filter(event_id__in=[op.key for op in operations])
        .values_list("event_id")
        .annotate(n=Count("id"))
    )
    outcomes = dict(
        WebhookEvent.objects.filter(event_id__in=[op.key for op in operations]).values_list(
            "event_id", "outcome"
        )
    )
    report.notes["webhook_outcomes"] = dict(collections.Counter(outcomes.values()))
    for op in operations:
        count = stored.get(op.key, 0)
        if count != 1:
            report.add(
                "lost" if count == 0 else "duplicated",
                "webhook",
                op.key,
                f"event stored {count} times",
                op,
            )
        elif op.result.get("replay_duplicate") is False:
            report.add(
                "duplicated", "webhook", op.key, "a replay was answered as a first delivery", op
            )
        elif outcomes[op.key] != op.intent["expect"]:
            report.add(
                "mismatched",
                "webhook",
                op.key,
                f"outcome {outcomes[op.key]}, expected {op.intent['expect']}",
                op,
            )


def _exports(report: Report, ledger: Ledger, schema: str, pk) -> None:
    operations = ledger.of("export")
    handed_out = {pk(export) for op in operations for export in op.result.get("exports", [])}
    storage = files.storage()
    for op in operations:
        export = (
            Export.objects.filter(pk=pk(op.result["export"])).first()
            if "export" in op.result
            else None
        )
        if export is None or export.status != ExportStatus.DONE:
            report.add(
                "lost",
                "export",
                op.key,
                f"export {export and export.pk} is {export.status if export else 'never created'}",
                op,
            )
        elif not storage.exists(export.file) or storage.size(export.file) != export.size:
            report.add(
                "lost",
                "export",
                op.key,
                f"export {export.pk} is DONE without its file ({export.file})",
                op,
            )
    for export in Export.objects.exclude(pk__in=handed_out):
        report.add(
            "duplicated",
            "export",
            str(export.pk),
            f"export {export.pk} ({export.status}, created "
            f"{export.created:%H:%M:%S.%f}) was handed out by no answer",
        )
    report.notes["exports_failed"] = [
        f"{export.pk}: {export.error}"
        for export in Export.objects.filter(status=ExportStatus.FAILED)
    ]
    named = {
        os.path.basename(name)
        for name in Export.objects.exclude(file="").values_list("file", flat=True)
    }
    stored = storage.listdir(schema)[1] if storage.exists(schema) else []
    report.notes["export_files_unnamed"] = sorted(set(stored) - named)


def recovery(faults: list[Fault], ledger: Ledger) -> dict[str, list[float | None]]:
    """For each fault, by kind: seconds from the fault to the first success of an attempt that
    began after it (None: no such success). An export's attempt is its exportCreate, its success
    the poll that saw it DONE, so its figure includes the export's own run time."""
    successes = {
        kind: [
            (op.attempt_started, op.succeeded) for op in ledger.of(kind) if op.succeeded is not None
        ]
        for kind in KINDS
    }
    figures: dict[str, list[float | None]] = {kind: [] for kind in KINDS}
    for fault in faults:
        for kind in KINDS:
            after = [done for began, done in successes[kind] if began >= fault.at]
            figures[kind].append(round(min(after) - fault.at, 2) if after else None)
    return figures
