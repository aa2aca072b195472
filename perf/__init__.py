"""Locust load scenarios for US-003 (run with Locust or ``batchqa load``; not collected by pytest)."""
