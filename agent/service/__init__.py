"""The writer thread: a batch of scans and typed control requests run through the rules against
store state and committed in one transaction.
"""
