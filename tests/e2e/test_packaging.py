"""The wheel, installed into a fresh virtual environment and run outside the checkout, carries
everything driftmon needs at run time: the migrations (monitor.migrations: env.py,
script.py.mako, versions/*.py), the starter files behind `driftmon init`, and every other file of
the package.

The new environment gets only the wheel (`--no-deps --no-index`); its dependencies come from
this checkout's virtual environment through PYTHONPATH, which holds site-packages but never the
checkout itself (site-packages' .pth files, among them the editable install's, are not processed
for PYTHONPATH entries). Every command runs with a working folder outside the checkout.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from importlib import resources
from pathlib import Path

import pytest

from monitor.store.migrate import head_revision
from tests.conftest import REPO

# Not part of a build: VCS data, virtual environments, build output and caches.
COPY_IGNORE = shutil.ignore_patterns(
    ".git",
    ".venv",
    "venv",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    "*.pyc",
    ".mypy_cache",
    ".pytest_cache",
    ".ruff_cache",
)


def run(
    args: list[str], *, cwd: Path, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, (
        f"{' '.join(args)}: exit {done.returncode}\nstdout:\n{done.stdout[-3000:]}\n"
        f"stderr:\n{done.stderr[-3000:]}"
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done


def package_files() -> set[str]:
    """Every file the installed package must have, as wheel paths: monitor/** plus the
    top-level migrations/** installed as monitor/migrations/**."""
    wanted: set[str] = set()
    for top, installed in (("monitor", "monitor"), ("migrations", "monitor/migrations")):
        for path in (REPO / top).rglob("*"):
            relative = path.relative_to(REPO / top)
            if path.is_file() and "__pycache__" not in relative.parts and path.suffix != ".pyc":
                wanted.add(f"{installed}/{relative.as_posix()}")
    return wanted


def build_wheel(tmp_path: Path) -> Path:
    # Built from a copy of the working tree: the build writes build/ and *.egg-info next to
    # its sources, and a stale build/lib in the checkout could leak removed files into it.
    source = tmp_path / "src"
    shutil.copytree(REPO, source, ignore=COPY_IGNORE, symlinks=True)
    dist = tmp_path / "dist"
    # Verbose, so the build backend's own warnings reach the output.
    built = run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--verbose", "-w", str(dist), "."],
        cwd=source,
    )
    # Data-only folders (starter, report templates, demo data) must be declared packages:
    # otherwise setuptools prints a "Package would be ignored" warning per folder on every
    # install, `make demo`'s first one included.
    assert "would be ignored" not in built.stdout + built.stderr
    wheels = list(dist.glob("llm_driftmon-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


@pytest.mark.slow
def test_wheel_works_outside_the_checkout(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path)

    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = next(
            archive.read(n).decode() for n in names if n.endswith(".dist-info/entry_points.txt")
        )
    migrations = {n for n in names if n.startswith("monitor/migrations/")}
    assert {"monitor/migrations/env.py", "monitor/migrations/script.py.mako"} <= migrations
    versions = {p.name for p in (REPO / "migrations" / "versions").glob("*.py")}
    assert {n.rsplit("/", 1)[1] for n in migrations if "/versions/" in n} == versions
    assert {"monitor/starter/driftmon.toml", "monitor/starter/starter.yaml"} <= names
    missing = sorted(package_files() - names)
    assert missing == [], f"files of the package missing from the wheel: {missing}"
    assert "driftmon = monitor.cli.main:main" in entry_points

    # A fresh environment holding only the wheel; pip comes from this interpreter.
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python, script = env_dir / "bin" / "python", env_dir / "bin" / "driftmon"
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--quiet",
            "--no-deps",
            "--no-index",
            str(wheel),
        ],
        cwd=tmp_path,
    )
    assert script.is_file()

    paths = sysconfig.get_paths()
    dependencies = os.pathsep.join(dict.fromkeys([paths["purelib"], paths["platlib"]]))
    assert not Path(paths["purelib"]).resolve().is_relative_to(REPO / "monitor")
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DRIFTMON_CONFIG", "PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"}
    }
    env.update({"PYTHONPATH": dependencies, "PYTHONNOUSERSITE": "1", "PYTHONSAFEPATH": "1"})
    outside = tmp_path / "work"
    outside.mkdir()
    assert not outside.resolve().is_relative_to(REPO.resolve())

    where = run(
        [
            str(python),
            "-c",
            "import monitor, monitor.migrations, monitor.starter\n"
            "print(monitor.__file__); print(monitor.migrations.__file__)",
        ],
        cwd=outside,
        env=env,
    ).stdout.splitlines()
    site = (env_dir / "lib").resolve()
    for module_file in where:
        assert Path(module_file).resolve().is_relative_to(site), where
        assert not Path(module_file).resolve().is_relative_to(REPO.resolve()), where

    done = run([str(script), "init", "project"], cwd=outside, env=env)
    project = outside / "project"
    assert "wrote" in done.stdout
    for name, path in (("driftmon.toml", "driftmon.toml"), ("starter.yaml", "probes/starter.yaml")):
        expected = resources.files("monitor.starter").joinpath(name).read_text(encoding="utf-8")
        assert (project / path).read_text(encoding="utf-8") == expected

    db = outside / "x.db"
    db_args = ["--db", f"sqlite:///{db}"]
    head = head_revision()
    done = run([str(script), *db_args, "db", "upgrade"], cwd=project, env=env)
    assert done.stdout.strip() == f"database upgraded: empty -> {head}"
    assert db.is_file()
    done = run([str(script), *db_args, "db", "current"], cwd=project, env=env)
    assert done.stdout.splitlines() == [f"current: {head}", f"head:    {head}", "up to date"]

    done = run([str(script), "probes", "validate"], cwd=project, env=env)
    assert done.stdout.strip() == "1 file(s), 2 probe(s), 0 problem(s)"
    # The report's templates are package data: the report renders from the wheel alone.
    done = run([str(script), *db_args, "report", "--out", "report.html"], cwd=project, env=env)
    assert done.stdout.strip() == str(project / "report.html")
    assert "No data yet" in (project / "report.html").read_text(encoding="utf-8")
    done = run([str(script), "--version"], cwd=project, env=env)
    assert done.stdout.startswith("driftmon, version ")
