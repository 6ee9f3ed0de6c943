"""Packaging glue that pyproject.toml cannot express: the top-level migrations/ folder is
installed as the package monitor.migrations, so the wheel carries its migrations."""

from setuptools import find_packages, setup

MIGRATIONS = {
    "monitor.migrations": "migrations",
    "monitor.migrations.versions": "migrations/versions",
}

setup(
    packages=[*find_packages(include=["monitor", "monitor.*"]), *MIGRATIONS],
    package_dir=MIGRATIONS,
)
