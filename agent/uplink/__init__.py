"""The uplink: the single owner of the paho client (broker PUBACKs and central acks), and the
small CA for the broker's mutual TLS.
"""
