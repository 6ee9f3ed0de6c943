"""Alembic migrations, installed as the package `monitor.migrations`."""
