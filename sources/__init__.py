"""Inputs: Kafka, JSON-lines file replay and the traffic simulator."""
