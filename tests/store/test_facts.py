"""agent/store/facts.py: what `status` reads from the store, and where a first reading starts."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from agent.ops.status import StatusSource
from agent.store import DB_FILE, Sealer, keys
from agent.store.facts import first_rid_since
from hardware_sim.workload import unit_codes
from tests.harness import InProcessAgent, agent_config, load_config


def test_a_first_reading_starts_at_the_window_not_at_the_oldest_row(tmp_path: Path) -> None:
    agent = InProcessAgent(load_config(tmp_path, agent_config(tmp_path, api={"enabled": False})))
    config = agent.config
    try:
        for code in unit_codes(30):
            agent.scan(code, "counter")
    finally:
        agent.close()
    db = config.device.data_dir / DB_FILE
    with sqlite3.connect(db) as conn:  # the first 20 rows were stored three days ago
        conn.execute("UPDATE outbox SET created = created - 3 * 86400 WHERE rid <= 20")
        conn.execute("DELETE FROM outbox WHERE rid BETWEEN 5 AND 15")  # and partly pruned
    conn.close()
    now = time.time() + 1
    since = now - config.status.window_hours * 3600
    ro = sqlite3.connect(db)
    try:
        assert first_rid_since(ro, since) == 21
        assert first_rid_since(ro, since - 4 * 86400) == 1
        assert first_rid_since(ro, now + 10) == 31  # nothing that new: one past the last
    finally:
        ro.close()
    ring = keys.load(tmp_path / "keys", create=False)
    st = StatusSource(config.device.data_dir, Sealer(ring.data)).gather(config.status, now)
    assert st.operations["dispense"].accepted == 10
