"""The job's logic as plain functions and state classes; thin Bytewax shims live beside them."""
