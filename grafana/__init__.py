"""Grafana boards as code: build, provision, publish and check every panel's SQL."""
