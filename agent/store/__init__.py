"""agent/store: the single owner of SQLite; encrypted outbox, code state, sequence and chain."""

from agent.store import acks
from agent.store.outbox import (
    DB_FILE,
    BufferFull,
    CodeMark,
    CodeState,
    Depth,
    Limits,
    NamedBlob,
    NewRecord,
    OutboxReader,
    OutboxRow,
    Store,
    StoreError,
    Topic,
    unsent_depth,
    unsent_rows,
)
from agent.store.sealing import Sealer, TamperedRecord

__all__ = [
    "DB_FILE",
    "BufferFull",
    "CodeMark",
    "CodeState",
    "Depth",
    "Limits",
    "NamedBlob",
    "NewRecord",
    "OutboxReader",
    "OutboxRow",
    "Sealer",
    "Store",
    "StoreError",
    "TamperedRecord",
    "Topic",
    "acks",
    "unsent_depth",
    "unsent_rows",
]
