"""Live model rollout: which model version serves (live) and which runs beside it (shadow).

The desired assignment is a message on the compacted control topic (``STREAMER_CONTROL_TOPIC``,
one partition). Every worker reads it from the beginning with its own consumer (no group), so each
sees every change, and applies it between two micro-batches: no message is processed by two models
or by none. ``streamer rollout`` and ``streamer promote`` publish the changes.
"""
