"""Outputs: Redis projections, the Parquet archive on S3, and Kafka topics (dead letters)."""
