"""The shapes that leave the device: canonical bytes, record bodies, signing, chaining and
verification. The only place a record body is built.
"""
