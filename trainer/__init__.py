"""Latency predictors trained on the farm's Parquet tables."""
