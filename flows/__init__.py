"""Dataflow assembly, settings and the ``clickstream`` command line."""
