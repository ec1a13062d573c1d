"""agent/store: the single owner of SQLite; encrypted outbox, code state, sequence and chain."""

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
    signed_hash,
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
    "signed_hash",
]
