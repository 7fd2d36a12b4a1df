"""The distribution installs one import package, `ticklake`, and works from any working directory.

Built as a wheel and installed into a new virtualenv (its dependencies come from the test
environment through a path entry, so nothing is downloaded), then run from a folder that holds
folders named like the project's own: `lake`, `catalog`, `sql`, `pipelines`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow  # builds a wheel and a virtualenv

SHADOWS = ("lake", "catalog", "sql", "pipelines", "bench")


def _not_sources(folder: str, names: list[str]) -> set[str]:
    """What a copy of the sources leaves out: caches anywhere, and the checkout's own working folders."""
    left_out = {n for n in names if n == "__pycache__" or n.endswith((".egg-info", "_cache"))}
    if Path(folder) == ROOT:
        left_out |= {n for n in names if n.startswith(".") or n in ("build", "dist", "lakehouse", "bench-data", "bench-results")}
    return left_out


def run(args: list[str], cwd: Path, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{args}\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A wheel of the project installed into a new virtualenv; a working folder full of look-alikes."""
    base = tmp_path_factory.mktemp("packaging")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TICKLAKE_", "DAGSTER_", "PYTHON"))}
    wheels = base / "wheels"
    # Built from a copy of the sources: setuptools keeps a build/ folder beside them, which must
    # neither land in the checkout nor carry files of an earlier build into this wheel.
    source = base / "source"
    shutil.copytree(ROOT, source, ignore=_not_sources)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(source)], cwd=base, env=env)
    (wheel,) = wheels.glob("ticklake-*.whl")
    target = base / "venv"
    venv.EnvBuilder(with_pip=False).create(target)
    python = target / "bin" / "python"
    site = Path(run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], base, env).stdout.strip())
    # The dependencies, without the test environment's own (editable) ticklake: a plain path entry
    # adds the folder to sys.path without running the .pth files in it.
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    run([*pip, "--python", str(python), "install", "--no-deps", "--no-index", str(wheel)], base, env)
    work = base / "work"
    for name in SHADOWS:
        (work / name).mkdir(parents=True)
        (work / name / "__init__.py").write_text("raise ImportError('a folder of the user, not ticklake')\n")
    env.update(DAGSTER_HOME=str(base / "dagster_home"), TICKLAKE_ROOT=str(work / "lakehouse"))
    (base / "dagster_home").mkdir()
    return {"wheel": wheel, "venv": target, "site": site, "work": work, "env": env}  # type: ignore[dict-item]


def test_the_wheel_holds_one_top_level_package(installed: dict[str, Path]) -> None:
    with zipfile.ZipFile(installed["wheel"]) as wheel:
        tops = {name.split("/")[0] for name in wheel.namelist()}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"ticklake"}
    assert not {name for name in SHADOWS if (installed["site"] / name).exists()}
    assert (installed["site"] / "ticklake" / "sql" / "catalog" / "0001_init.sql").is_file()
    assert (installed["site"] / "ticklake" / "demo" / "data" / "eurusd_quotes_2020-01-01.csv").is_file()


def test_demo_sql_and_dagster_run_from_a_folder_of_look_alikes(installed: dict[str, Path]) -> None:
    bin_dir, work, env = installed["venv"] / "bin", installed["work"], dict(installed["env"])
    demo = run([str(bin_dir / "ticklake"), "demo", "--ticks", "20000", "--contracts", "20"], work, env)
    assert "reconciled:" in demo.stdout
    query = "SELECT count(*) FROM ticks WHERE symbol = 'EUR.USD'"
    assert run([str(bin_dir / "ticklake"), "sql", query, "--format", "csv"], work, env).stdout == "count_star()\n9500\n"
    # Dagster's code location, by module name, materializes an hour of a second lake.
    other = work / "other-lake"
    trade = {"contract_id": 7, "tick_type": "last", "price": 10.5, "size": 1}
    lines = [json.dumps({"timestamp": f"2022-01-07T15:0{m}:00Z", **trade}) + "\n" for m in range(3)]
    (work / "trades.jsonl").write_text("".join(lines))
    run([str(bin_dir / "ticklake"), "--root", str(other), "ingest", "trades.jsonl"], work, env)
    materialize = [str(bin_dir / "python"), "-m", "dagster", "asset", "materialize", "-m", "ticklake.pipelines.definitions"]
    run(
        [*materialize, "--select", "ticks,bars_1m", "--partition", "2022-01-07-15:00"], work, {**env, "TICKLAKE_ROOT": str(other)}
    )
    bars = run(
        [str(bin_dir / "ticklake"), "--root", str(other), "sql", "SELECT count(*), sum(trades) FROM bars_1m", "--format", "csv"],
        work,
        env,
    )
    assert bars.stdout.splitlines()[1] == "3,3"
    code = "import ticklake, ticklake.catalog; print(ticklake.__file__, ticklake.catalog.__file__)"
    paths = run([str(bin_dir / "python"), "-c", code], work, env).stdout.split()
    assert all(Path(p).is_relative_to(installed["site"]) for p in paths)
