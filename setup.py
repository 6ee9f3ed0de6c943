"""Packaging glue that pyproject.toml cannot express: the top-level migrations/ folder is
installed as the package monitor.migrations, so the wheel carries its migrations.

Folders that hold only data (monitor/starter, monitor/report/templates,
monitor/demo_assets/llmdrift) are found as namespace packages, so setuptools installs their
files as declared package data instead of warning that they "would be ignored"."""

from setuptools import find_namespace_packages, setup

MIGRATIONS = {
    "monitor.migrations": "migrations",
    "monitor.migrations.versions": "migrations/versions",
}

setup(
    packages=[
        *find_namespace_packages(include=["monitor", "monitor.*"], exclude=["*.__pycache__"]),
        *MIGRATIONS,
    ],
    package_dir=MIGRATIONS,
)
