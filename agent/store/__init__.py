"""agent/store: the single owner of SQLite; encrypted outbox, code state, sequence and chain."""

from agent.store import acks, instance
from agent.store.instance import AlreadyRunning, InstanceLock
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
    unpublished,
    unsent_depth,
    unsent_rows,
)
from agent.store.sealing import Sealer, TamperedRecord

__all__ = [
    "DB_FILE",
    "AlreadyRunning",
    "BufferFull",
    "CodeMark",
    "CodeState",
    "Depth",
    "InstanceLock",
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
    "instance",
    "unpublished",
    "unsent_depth",
    "unsent_rows",
]
