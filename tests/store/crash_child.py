"""Child process for crash tests: confirms scans as fast as it can until it is killed.

Runs the daemon's real confirm path (the writer's `process`: decide, sign, chain, encrypt, commit)
and prints `C <seq> <code>` only after the commit returned — exactly when a worker would be
told "accepted". The parent kills it with SIGKILL at a random moment.

With a third argument `pauses`, it stops now and then for longer than the store's quiet
period, so the daemon's background checkpoint runs and the kill can land in the middle of one.
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

from agent.rules.decision import Decision
from agent.store.checkpoint import QUIET_S
from drivers import RawScan
from tests.harness import InProcessAgent, agent_config, load_config


class PrintConfirmed:
    """Feedback that reports confirmed scans on stdout, unbuffered."""

    def decided(self, scan: RawScan, decision: Decision, seq: int | None) -> None:
        """Print the confirmation the worker would see."""
        if decision.accepted:
            sys.stdout.write(f"C {seq} {decision.text}\n")
            sys.stdout.flush()

    def note(self, scan: RawScan, text: str) -> None:
        """Commands are not scanned here."""


def main() -> None:
    root, start = Path(sys.argv[1]), int(sys.argv[2])
    pauses = sys.argv[3:] == ["pauses"]
    config = load_config(root, agent_config(root, device_id="crash", site="lab"))
    agent = InProcessAgent(config, feedback=[PrintConfirmed()])
    rng = random.Random(start)
    serial = start
    print("READY", flush=True)
    while True:
        batch = []
        for _ in range(rng.randint(1, 8)):
            serial += 1
            batch.append(
                RawScan(f"8123456{serial:09d}{rng.randrange(10000):04d}", "crash", time.time())
            )
        agent.process(list(batch))
        if pauses and rng.random() < 0.05:
            time.sleep(QUIET_S + rng.uniform(0.0, 0.1))
            sys.stdout.write(f"P {agent.agent.store.pause_checkpoints}\n")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
