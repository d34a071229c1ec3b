"""Lossless MQTT ingest of meter readings (installed as ``parkcarbon.ingest``)."""
