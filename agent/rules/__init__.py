"""Pure policy: operations, reasons, level and expiry, double reads, custody, blocklist,
aggregation, manifests and command barcodes. Values in, values out: no clock, no store, no I/O.
"""
