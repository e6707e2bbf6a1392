"""Nothing lost, nothing twice, under faults (issue 15): a mixed workload against real processes
while the Celery worker is SIGKILLed and Redis restarted at random, then a count, from the
database and from localstripe, of every operation that was lost or happened twice.

    make bench NAME=faults                          (300 s of workload)
    FAULTS_SECONDS=60 make bench NAME=faults        (or: python bench/faults.py --seconds 60)

What runs, all real processes: uvicorn serving config.asgi (config/devserver/asgi_server.py), a
Celery worker (2 pool processes) and beat, localstripe (as the payment tests start it), and a
Redis of the bench's own (tests/faults/processes.py) with an append-only file, as the production
broker has (docker-compose.yml). PostgreSQL is the launcher's (make bench runs this through
config.devserver). The tenant bench-faults is provisioned afresh, seeded with ORDERS (20,000)
orders so that an export runs for seconds and the worker is rarely idle (a kill finds one
running), and given Stripe keys for localstripe through `paymentSettingsUpdate`; it is dropped
at the end (KEEP=1 keeps it, with the bench's folder of logs and files, for a look at a finding).

The workload (bench/fault_workload.py) goes through the GraphQL API and the webhook endpoint only:
orders, Stripe payments, refunds with a requestKey, refunds made in the Stripe dashboard and
reported by webhook, Stripe's webhook deliveries and their replays, and exports polled until
done. Every operation is retried with its key until it succeeds or OP_DEADLINE_S (180 s) passes.

The faults (bench/fault_processes.py), each on its own random schedule (seed printed; --seed
replays it), every 20-40 s: the worker and its pool SIGKILLed together and a new worker started;
Redis SIGKILLed and started again 1-5 s later. Two settings are shortened for the bench: the
Celery task time limit (60 s instead of 600 s), and with it the broker's visibility timeout
(1.5 times it: 90 s instead of 900 s), the time after which a task a killed worker held is handed
out again; production's would outlast the bench. And the GraphQL throttle's bucket is made big
enough that the workload never waits for it (THROTTLED answers would be retried all the same).

After SECONDS no new operation starts and the faults stop; the operations under way finish (or
reach their deadline), exports still queued or running get up to SETTLE_S (150 s) more to finish
(a killed worker's come back after the visibility timeout), the processes are stopped, and
bench/fault_checks.py counts: what is unfinished then is lost, not late. Progress lines go to
stdout, with a line per fault and per lost or duplicated operation (which operation, what its
attempts met, which faults struck meanwhile). The last line is one JSON object:
`operations_count` (operations meant), `lost_count`, `duplicated_count`, `mismatched_count`
(amounts or outcomes other than meant), `http_5xx_count` (every 5xx answer, the documented 503
UNAVAILABLE among them) and `http_503_count`, `recovery_max_s` (the longest time from a fault to
the first success, of each kind of operation, of an attempt begun after it; an export's includes
its run), `worker_kills`, `redis_restarts`; then what else was seen: `self_exits_count` (a
worker or beat that died without being killed; it is started again), `unconfirmed_count`
(operations whose success the client never saw, done once all the same), `export_wait_max_s`
(from exportCreate's answer to DONE: a killed worker's exports, the prefetched ones too, wait
out the visibility timeout), `exports_failed_count`, `temp_files_left_count` (what killed
exports left in the worker's TMPDIR), the operations by kind and the recovery by kind. It exits
1 when anything was lost or duplicated.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-0123456789abcdefghijklmnopqrstuvwxyz")
os.environ.setdefault("FIELD_ENCRYPTION_KEY", "YmVuY2gtb25seS1maWVsZC1rZXktMDEyMzQ1Njc4OWE=")
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ.setdefault("JWT_EXPIRATION_MINUTES", "120")  # the bench's one token outlives the run
os.environ.setdefault(
    "CELERY_TASK_TIME_LIMIT", "60"
)  # see the docstring: the visibility timeout follows
# The exports' reconciler on the same scale: an export whose message was lost (a worker killed
# between taking it and recording it, kombu's pop-then-record) is queued again within ~2.5 min.
os.environ.setdefault("EXPORT_REQUEUE_AFTER", "120")
os.environ.setdefault("EXPORT_RECONCILE_SECONDS", "30")
# The bench measures faults, not the throttle: a bucket the workload never empties.
os.environ.setdefault("GRAPHQL_BUCKET_SIZE", "1000000")
os.environ.setdefault("GRAPHQL_RESTORE_RATE", "100000")

from tests.faults.processes import RedisProcess  # noqa: E402 (no Django in it)

WORK = Path(tempfile.mkdtemp(prefix="bench-faults-"))
# Everything the server, the worker and this process share goes through the environment.
os.environ["EXPORT_ROOT"] = str(WORK / "exports")
(WORK / "redis").mkdir()
(WORK / "tmp").mkdir()
REDIS = RedisProcess(WORK / "redis", appendonly=True)
os.environ["REDIS_URL"] = REDIS.url

import django  # noqa: E402

django.setup()

import httpx  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django_tenants.utils import tenant_context  # noqa: E402

from apps.accounts.models import User  # noqa: E402
from apps.catalog.models import Product, Variant  # noqa: E402
from apps.common import global_ids  # noqa: E402
from apps.exports.models import Export, ExportStatus  # noqa: E402
from apps.provisioning.seeding import SeedSize, seed_demo  # noqa: E402
from apps.provisioning.services import provision_tenant  # noqa: E402
from bench.fault_checks import KINDS, Report, check, recovery  # noqa: E402
from bench.fault_client import Api, Ledger, LocalStripe  # noqa: E402
from bench.fault_processes import CeleryProcess, FaultSchedule  # noqa: E402
from bench.fault_workload import Shop, Workload  # noqa: E402
from config.devserver.asgi_server import uvicorn_server  # noqa: E402
from tenants.models import Tenant  # noqa: E402
from tests.apps.payments.fixtures import localstripe_url, stop_localstripe  # noqa: E402

SLUG = "bench-faults"
OWNER = f"o@{SLUG}.test"
PASSWORD = "bench-Pass-123"
ORDERS = int(os.environ.get("ORDERS", "20000"))
OP_DEADLINE_S = float(os.environ.get("OP_DEADLINE_S", "180"))
PROGRESS_EVERY_S = 10
# After the workload: how long unfinished exports get to finish (the visibility timeout, 90 s, the
# worker's restore tick, 10 s, or the reconciler's re-queue, 120 s plus its 30 s sweep, and a run).
SETTLE_S = float(os.environ.get("SETTLE_S", "240"))


class Clock:
    """Seconds since the workload began, for every line and figure."""

    def __init__(self) -> None:
        self.zero = time.monotonic()

    def __call__(self) -> float:
        return time.monotonic() - self.zero


_print_lock = threading.Lock()


def say(line: str) -> None:
    with _print_lock:
        print(line, flush=True)


def _options() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Faults bench (see the module docstring).")
    parser.add_argument(
        "--seconds",
        type=float,
        default=float(os.environ.get("FAULTS_SECONDS", "300")),
        help="how long the workload and the faults run (FAULTS_SECONDS; 300)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=int(os.environ.get("FAULTS_SEED", random.randrange(10**6))),
        help="the fault schedule's and the workload's random seed (FAULTS_SEED)",
    )
    return parser.parse_args()


def _drop() -> None:
    connection.set_schema_to_public()
    for tenant in Tenant.objects.filter(slug=SLUG):
        tenant.delete(force_drop=True)
    User.objects.filter(email=OWNER).delete()


def _tenant() -> tuple[Tenant, tuple[str, ...]]:
    """The tenant, seeded, and the global ids of variants with stock for the whole run."""
    tenant = provision_tenant(
        name="Bench faults", slug=SLUG, owner_email=OWNER, owner_password=PASSWORD
    )
    seed_demo(tenant=tenant, size=SeedSize(products=20, customers=500, orders=ORDERS), seed=42)
    with tenant_context(tenant):
        product = Product.objects.create(
            name="Faults bench product", slug="faults-bench-product", status=Product.Status.ACTIVE
        )
        variants = [
            Variant.objects.create(
                product=product, sku=f"FAULTS-{n}", name=f"Size {n}", price=price, stock=10**7
            )
            for n, price in enumerate(("19.90", "42.00", "7.25", "120.35"))
        ]
    connection.set_schema_to_public()
    return tenant, tuple(global_ids.encode("Variant", v.pk, tenant.schema_name) for v in variants)


def _drain(stream, log: Path) -> threading.Thread:
    """Copy a child's output into `log` as it comes (an unread pipe would stall the child)."""

    def copy() -> None:
        with open(log, "ab") as out:
            for line in iter(stream.readline, b""):
                out.write(line)
                out.flush()

    thread = threading.Thread(target=copy, daemon=True)
    thread.start()
    return thread


def _sign_in_and_configure(port: int, host: str, keys: dict[str, str]) -> str:
    """The owner's token (tokenCreate), and the shop's Stripe keys set through the API."""
    with httpx.Client(
        base_url=f"http://127.0.0.1:{port}", headers={"Host": f"{host}:{port}"}, timeout=30
    ) as http:
        answer = http.post(
            "/graphql/",
            json={
                "query": "mutation($e: String!, $p: String!) { tokenCreate(email: $e, "
                "password: $p) { token userErrors { code message } } }",
                "variables": {"e": OWNER, "p": PASSWORD},
            },
        ).json()
        token = answer["data"]["tokenCreate"]["token"]
        assert token, answer
        answer = http.post(
            "/graphql/",
            headers={"Authorization": f"Bearer {token}"},
            json={
                "query": "mutation($input: PaymentSettingsInput!) { paymentSettingsUpdate(input: $input) { "
                "userErrors { field code message } } }",
                "variables": {
                    "input": {
                        "stripeEnabled": True,
                        "stripePublishableKey": keys["publishable"],
                        "stripeSecretKey": keys["secret"],
                        "stripeWebhookSecret": keys["webhook"],
                    }
                },
            },
        ).json()
        assert answer.get("data", {}).get("paymentSettingsUpdate", {}).get("userErrors") == [], (
            answer
        )
    return token


def _progress(clock: Clock, ledger: Ledger) -> str:
    operations = {kind: ledger.of(kind) for kind in KINDS}
    done = {kind: sum(op.succeeded is not None for op in ops) for kind, ops in operations.items()}
    every = [op for ops in operations.values() for op in ops]
    under_way = sum(op.succeeded is None and not op.refused for op in every)
    statuses, _ = ledger.answers()
    return (
        f"t={clock():6.1f} s  done: "
        + ", ".join(f"{n} {kind}s" for kind, n in done.items())
        + f"; under way {under_way}; retried {sum(op.attempts > 1 for op in every)}; "
        f"5xx {ledger.http_5xx()} (503 {statuses.get(503, 0)}); no answer {statuses.get('transport', 0)}"
    )


def _settle_exports(tenant: Tenant, clock: Clock) -> None:
    """Exports the client stopped waiting for may still be queued or running: a killed worker's
    come back only after the visibility timeout, and each kill starts that wait again. With the
    worker still up, wait until none is left or SETTLE_S passes, so what the checks then find
    unfinished is lost, not late."""
    give_up = clock() + SETTLE_S
    while True:
        with tenant_context(tenant):
            left = Export.objects.filter(
                status__in=(ExportStatus.QUEUED, ExportStatus.RUNNING)
            ).count()
        connection.set_schema_to_public()
        if not left or clock() > give_up:
            break
        say(f"t={clock():6.1f} s  {left} exports still queued or running in the database; waiting")
        time.sleep(5)


def _run(
    args: argparse.Namespace, tenant: Tenant, variants: tuple[str, ...], stripe_base: str
) -> dict:
    token_hex = random.Random(args.seed).getrandbits(96).to_bytes(12, "big").hex()
    keys = {
        "publishable": f"pk_test_{token_hex}",
        "secret": f"sk_test_{token_hex}",
        "webhook": f"whsec_{token_hex}{token_hex}",
    }
    host = tenant.domains.get(is_primary=True).domain
    env = dict(os.environ)
    worker = CeleryProcess(
        ["worker", "-l", "warning", "--concurrency", "2", "-n", "bench-faults@%h"],
        env={**env, "TMPDIR": str(WORK / "tmp")},
        log=WORK / "worker.log",
    )
    beat = CeleryProcess(
        ["beat", "-l", "warning", "--schedule", str(WORK / "beat-schedule")],
        env=env,
        log=WORK / "beat.log",
    )
    try:
        with uvicorn_server(
            "--no-access-log", env={"SESSION_COOKIE_SECURE": "false"}, capture_output=True
        ) as server:
            _drain(server.process.stdout, WORK / "server.log")
            token = _sign_in_and_configure(server.port, host, keys)
            worker.start()
            beat.start()
            clock = Clock()
            ledger = Ledger(clock)
            api = Api(
                port=server.port,
                host=host,
                token=token,
                webhook_secret=keys["webhook"],
                ledger=ledger,
            )
            shop = Shop(
                slug=SLUG, schema=tenant.schema_name, variants=variants, run=f"f{args.seed}"
            )
            workload = Workload(
                api=api,
                stripe=LocalStripe(stripe_base, keys["secret"]),
                ledger=ledger,
                shop=shop,
                clock=clock,
                seed=args.seed,
                op_deadline_s=OP_DEADLINE_S,
                say=say,
            )
            faults = FaultSchedule(worker=worker, redis=REDIS, clock=clock, say=say, seed=args.seed)
            say(f"workload and faults for {args.seconds:.0f} s (seed {args.seed}); logs in {WORK}")
            workload.start()
            faults.start()
            died, next_line = 0, PROGRESS_EVERY_S
            while clock() < args.seconds:
                time.sleep(min(1.0, max(0.0, args.seconds - clock())))
                for name, process in (("worker", worker), ("beat", beat)):
                    # Died on its own, not by a fault: started again at once, as a supervisor would.
                    if (code := process.revive()) is not None:
                        died += 1
                        say(
                            f"t={clock():6.1f} s  {name} exited by itself (code {code}); started again"
                        )
                if clock() >= next_line or clock() >= args.seconds:
                    say(_progress(clock, ledger))
                    next_line += PROGRESS_EVERY_S
            faults.stop()
            ended = clock()
            say(f"t={ended:6.1f} s  faults stopped; waiting for the operations under way")
            workload.wind_down()
            next_line = ended + PROGRESS_EVERY_S
            while workload.busy():
                time.sleep(0.5)
                if clock() >= next_line:
                    say(_progress(clock, ledger))
                    next_line += PROGRESS_EVERY_S
            _settle_exports(tenant, clock)
            say(f"t={clock():6.1f} s  settled ({clock() - ended:.1f} s after the end)")
            say(_progress(clock, ledger))
    finally:
        worker.stop()
        beat.stop()
    return {
        "ledger": ledger,
        "faults": faults,
        "died": died,
        "stripe": LocalStripe(stripe_base, keys["secret"]),
    }


def _describe(report: Report, faults: list) -> None:
    for finding in report.findings:
        line = f"{finding.verdict.upper()} {finding.kind} {finding.key}: {finding.what}"
        op = finding.operation
        if op is not None:
            until = op.succeeded or op.attempt_started
            struck = [
                f"{f.kind} at t={f.at:.1f}" for f in faults if op.started - 5 <= f.at <= until + 5
            ]
            line += (
                f" | began t={op.started:.1f}, {op.attempts} attempts, "
                + (
                    "succeeded"
                    if op.succeeded
                    else f"never succeeded{' (' + op.refused + ')' if op.refused else ''}"
                )
                + f"; attempts met: {dict(op.failures) or 'nothing'}; faults near it: {struck or 'none'}"
            )
        say(line)


def _exit(signum: int, _frame: object) -> None:
    """SIGTERM (make, the launcher) unwinds like Ctrl-C: every process the bench started stops."""
    sys.exit(128 + signum)


def main() -> None:
    args = _options()
    signal.signal(signal.SIGTERM, _exit)
    keep = os.environ.get("KEEP") == "1"
    try:
        REDIS.start()
        call_command("setup_platform", verbosity=0)  # every schema current, the template included
        stripe_base = localstripe_url()
        os.environ["STRIPE_API_BASE"] = stripe_base
        _drop()
        started = time.perf_counter()
        tenant, variants = _tenant()
        say(
            f"tenant {SLUG} provisioned and seeded with {ORDERS} orders in {time.perf_counter() - started:.1f} s"
        )
        connection.close()
        run = _run(args, tenant, variants, stripe_base)
        report = check(
            tenant=tenant, ledger=run["ledger"], stripe=run["stripe"], temp_dir=WORK / "tmp"
        )
    finally:
        stop_localstripe()
        REDIS.kill()
        if not keep:
            _drop()
            shutil.rmtree(WORK, ignore_errors=True)
    _summary(args, run, report)


def _summary(args: argparse.Namespace, run: dict, report: Report) -> None:
    """The findings, the recovery after each fault, what else was seen, and the JSON line."""
    ledger, faults = run["ledger"], run["faults"]
    _describe(report, faults.faults)
    for op in ledger.operations:
        if (
            op.refused
        ):  # a bug of the bench or an answer it does not expect: said, whatever the checks found
            say(f"REFUSED {op.kind} {op.key}: {op.refused}")
    figures = recovery(faults.faults, ledger)
    for index, fault in enumerate(faults.faults):
        say(
            f"recovery after {fault.kind} at t={fault.at:.1f} s: "
            + ", ".join(f"{kind} {figures[kind][index]}" for kind in KINDS)
        )
    known = [value for values in figures.values() for value in values if value is not None]
    never = sum(value is None for values in figures.values() for value in values)
    notes = report.notes
    statuses, codes = ledger.answers()
    lost = {id(finding.operation) for finding in report.findings if finding.verdict == "lost"}
    say(
        f"webhook outcomes {notes['webhook_outcomes']}; exports FAILED {notes['exports_failed'] or 'none'}; "
        f"export files no export names {len(notes['export_files_unnamed'])}; temporary files left by killed "
        f"workers {len(notes['temp_files_left'])}; fault injection errors {faults.errors or 'none'}; "
        f"worker or beat exits on their own {run['died'] + len(faults.exits)}; answers {statuses}, "
        f"GraphQL codes {codes}"
    )
    print(
        json.dumps(
            {
                "bench": "faults",
                "seconds": args.seconds,
                "operations_count": len(ledger.operations),
                "lost_count": report.count("lost"),
                "duplicated_count": report.count("duplicated"),
                "http_5xx_count": ledger.http_5xx(),
                "recovery_max_s": max(known) if known else None,
                "worker_kills": faults.count("worker_kill"),
                "redis_restarts": faults.count("redis_restart"),
                "http_503_count": statuses.get(503, 0),
                "mismatched_count": report.count("mismatched"),
                "refused_count": sum(bool(op.refused) for op in ledger.operations),
                # the client gave up (deadline) but the checks found the effect, once: late, not lost
                "unconfirmed_count": sum(
                    op.succeeded is None and id(op) not in lost for op in ledger.operations
                ),
                # from exportCreate's answer to DONE: a kill makes the killed worker's exports (those it had
                # prefetched too) wait out the visibility timeout
                "export_wait_max_s": max(
                    (
                        round(op.succeeded - op.result["created_at"], 1)
                        for op in ledger.of("export")
                        if op.succeeded is not None and op.result.get("created_at")
                    ),
                    default=None,
                ),
                "no_answer_count": statuses.get("transport", 0),
                "self_exits_count": run["died"]
                + len(faults.exits),  # worker or beat, not killed by the bench
                "unrecovered_count": never,
                "exports_failed_count": len(notes["exports_failed"]),
                "export_files_unnamed_count": len(notes["export_files_unnamed"]),
                "temp_files_left_count": len(notes["temp_files_left"]),
                **{f"{kind}s_count": len(ledger.of(kind)) for kind in KINDS},
                **{
                    f"recovery_{kind}_max_s": max(
                        (v for v in figures[kind] if v is not None), default=None
                    )
                    for kind in KINDS
                },
                "seed": args.seed,
            }
        )
    )
    if report.count("lost") or report.count("duplicated"):
        print(
            f"faults bench: {report.count('lost')} lost, {report.count('duplicated')} duplicated",
            file=sys.stderr,
        )
        sys.exit(1)


if __name__ == "__main__":
    main()
