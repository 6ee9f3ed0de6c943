"""What happens after a run is stored: drift, alerts, delivery. `driftmon run`, `driftmon serve`
and `driftmon demo` all go through here, so a run is judged and announced the same way
whichever of them made it.

Data path:

1. `evaluate_and_alert(engine, run_id, ...)`: the drift engine (`monitor.drift.engine`)
   records an identity event and the automatic baseline when due, computes the statistics
   outside any transaction (through `evaluator`: in this process, or a child process for the
   daemon and `run`), then stores the evaluation and its verdicts in one transaction. In that
   same transaction, through the engine's `on_stored` hook, the stored record goes to the
   alert manager (`monitor.alerts.manager.update_alerts`), which moves the run's alerts along
   and queues their messages in the outbox. The evaluation, the alert states and the outbox
   rows commit together or not at all.
2. `deliver(engine, notifier, ...)`: the outbox sends what is due (`monitor.alerts.outbox`),
   one row at a time, until its deadline; what is left is retried by the next pass.

Contract:

- A complete run that builds the baseline stores no evaluation: its outage alert is still
  judged, in a transaction of its own. An unknown or incomplete run, or one older than the
  active baseline, gets no evaluation and moves no alert (None is returned).
- A run evaluated again (a retry, or another process was first) returns the stored evaluation
  and changes no alert: the hook runs only when this call stores the evaluation, and each
  alert remembers the newest run that updated it.
- `evaluate_and_alert` raises whatever the statistics or the database raise; nothing of that
  evaluation, its alerts or its messages is then stored (an identity event or automatic
  baseline recorded before the statistics stays: each is correct on its own).
- `deliver` raises only database errors: a refused or failed send is counted in the report
  and recorded on its row, never raised.
- Nothing here loads the statistics (scipy) at import: `driftmon run` leaves that to its
  child process while the requests are in flight.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from monitor.alerts.manager import AlertPolicy, update_alerts
from monitor.alerts.outbox import DeliveryReport, deliver_due
from monitor.drift.engine import Evaluator, evaluate_run
from monitor.drift.queries import EvaluationRecord
from monitor.drift.settings import DriftConfig
from monitor.store.db import session_scope
from monitor.store.models import Run, utcnow

if TYPE_CHECKING:
    from monitor.alerts import Notifier
    from monitor.alerts.slack import SlackNotifier
    from monitor.config import LoadedConfig

DELIVERY_BUDGET = 30.0  # seconds one delivery pass may take before it leaves the rest to retries


def notifier_for(config: LoadedConfig) -> SlackNotifier | None:
    """The configured Slack notifier, or None when `[alerts.slack]` is absent."""
    slack = config.settings.alerts.slack
    if slack is None:
        return None
    from monitor.alerts.slack import SlackNotifier  # slack_sdk: only when there is a notifier

    return SlackNotifier.from_settings(slack, base_dir=config.base_dir)


def evaluate_and_alert(
    engine: Engine,
    run_id: int,
    drift: DriftConfig,
    policy: AlertPolicy,
    *,
    now: datetime | None = None,
    evaluator: Evaluator | None = None,
) -> EvaluationRecord | None:
    """Evaluate drift for a stored run and update its alerts, queueing what must be said.

    The outage alert is judged on every complete run, including those that build the baseline.
    """
    moment = now or utcnow()

    def on_stored(s: Session, record: EvaluationRecord, run: Run) -> None:
        update_alerts(s, run, record, policy, moment)

    record = evaluate_run(engine, run_id, drift, on_stored=on_stored, evaluator=evaluator)
    if record is not None and record.evaluation_id is None:
        with session_scope(engine) as s:
            run = s.get(Run, run_id)
            if run is not None:
                update_alerts(s, run, None, policy, moment)
    return record


def deliver(
    engine: Engine,
    notifier: Notifier,
    *,
    deadline: float | None,
    owner: str | None = None,
) -> DeliveryReport:
    """Send what the outbox holds and is due, until `deadline` on time.monotonic() (None: until
    every due row was tried once). The caller takes the deadline when it decides to deliver,
    so time spent waiting for a worker thread counts against the budget."""
    return deliver_due(engine, notifier, owner=owner, deadline=deadline)


__all__ = ["DELIVERY_BUDGET", "deliver", "evaluate_and_alert", "notifier_for"]
