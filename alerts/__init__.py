"""Alerts: rules, a durable state machine per (rule, subject), and notification delivery."""
