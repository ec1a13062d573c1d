"""A device's store filled with a backlog of real events, without typing them on a scanner.

The events are what the daemon makes for accepted unit scans at `dispense`: signed with the
device's Ed25519 key, hash-chained, sealed into its encrypted store by `Store.write` — as if
the device had scanned them while the broker was out of reach. For benchmarks and for tests
that need a backlog of 100,000 events in seconds.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Final

from agent.config import load
from agent.records.envelope import rfc3339
from agent.records.signing import sign_event
from agent.store import Limits, NewRecord, Sealer, Store, keys
from hardware_sim.workload import unit_codes

#: Events per transaction.
BATCH: Final = 1000


def build_backlog(config: Path, n: int) -> float:
    """Append `n` events to the store of the agent configured in `config` (its keys are
    created if they do not exist yet); the seconds it took."""
    cfg = load(config)
    ring = keys.load(cfg.device.key_dir)
    cfg.device.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    store = Store(cfg.device.data_dir, Sealer(ring.data), limits=Limits(max_bytes=1 << 40))
    began = time.perf_counter()
    try:
        head = store.head
        codes = unit_codes(n, start=head.seq + 1)
        for i in range(0, n, BATCH):
            records: list[NewRecord] = []
            for code in codes[i : i + BATCH]:
                body: dict[str, object] = {
                    "v": 1,
                    "id": str(uuid.uuid4()),
                    "device": cfg.device.id,
                    "site": cfg.device.site,
                    "op": "dispense",
                    "code": code,
                    "kind": "cn20",
                    "level": "unit",
                    "fields": {"product_code": code[:7], "serial": code[7:16]},
                    "ts": rfc3339(time.time()),
                    "doc": None,
                    "seq": head.seq + 1,
                    "prev": head.hash,
                }
                sealed = sign_event(body, ring.signing)
                head = sealed.head
                records.append(NewRecord("event", sealed.payload, head.seq))
            store.write(records, head)
    finally:
        store.close()
    return time.perf_counter() - began
