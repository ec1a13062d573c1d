"""agent/store: the single owner of SQLite; encrypted outbox, chain head and sequence."""

from agent.store.outbox import (
    DB_FILE,
    Depth,
    NewRecord,
    OutboxReader,
    OutboxRow,
    Store,
    StoreError,
    Topic,
)
from agent.store.sealing import Sealer, TamperedRecord

__all__ = [
    "DB_FILE",
    "Depth",
    "NewRecord",
    "OutboxReader",
    "OutboxRow",
    "Sealer",
    "Store",
    "StoreError",
    "TamperedRecord",
    "Topic",
]
