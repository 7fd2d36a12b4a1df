"""Settings: every one is read from its TICKLAKE_* variable by its declared type, by one parser."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ticklake.config import SETTINGS, LakeConfig, Setting
from ticklake.errors import ConfigError
from ticklake.pipelines.settings import PIPELINE_SETTINGS, PipelineSettings

# A valid value of each setting other than its default, as typed into the environment and as parsed.
CHANGED: dict[str, tuple[str, Any]] = {
    "root": ("/data/lake", Path("/data/lake")),
    "writer_id": ("writer-7", "writer-7"),
    "segment_max_bytes": ("2048", 2048),
    "segment_retention_hours": ("0.5", 0.5),
    "row_group_rows": ("1000", 1000),
    "zstd_level": ("9", 9),
    "bloom_fpp": ("0.001", 0.001),
    "threads": ("4", 4),
    "cold_uri": ("s3://ticks/lake", "s3://ticks/lake"),
    "archive_zstd_level": ("12", 12),
    "archive_row_group_rows": ("4096", 4096),
    "cache_dir": ("/data/cache", "/data/cache"),
    "cache_bytes": ("1048576", 1048576),
    "fresh": ("0", 0),
    "iceberg_uri": ("sqlite:////data/iceberg.db", "sqlite:////data/iceberg.db"),
    "iceberg_warehouse": ("s3://warehouse/", "s3://warehouse/"),
    "iceberg_sigv4": ("1", 1),
    "price_warm_gb_month": ("0.1", 0.1),
    "price_cold_gb_month": ("0.03", 0.03),
    "price_cold_ia_gb_month": ("0.01", 0.01),
    "price_get_per_1000": ("0.001", 0.001),
    "price_put_per_1000": ("0.01", 0.01),
    "price_list_per_1000": ("0.01", 0.01),
    "partitions_start": ("2021-06-01-05:00", "2021-06-01-05:00"),
    "schedule_minute": ("25", 25),
    "sensor_interval": ("15", 15),
    "lease_wait": ("2.5", 2.5),
    "backfill_hours_per_run": ("24", 24),
    "archive_older_than": ("3d", "3d"),
    "archive_cron": ("0 4 * * *", "0 4 * * *"),
}


def variables(settings: tuple[Setting, ...]) -> dict[str, str]:
    return {s.env: CHANGED[s.name][0] for s in settings}


@pytest.mark.parametrize(("cls", "settings"), [(LakeConfig, SETTINGS), (PipelineSettings, PIPELINE_SETTINGS)])
def test_every_setting_is_read_from_its_variable(cls: Any, settings: tuple[Setting, ...]) -> None:
    assert {s.name for s in settings} <= set(CHANGED)
    config = cls.from_env(variables(settings))
    for s in settings:
        assert CHANGED[s.name][1] != s.default, s.name
        assert getattr(config, s.name) == CHANGED[s.name][1], s.env
        assert isinstance(getattr(config, s.name), s.type), s.env


def test_settings_are_declared_once_with_type_and_help() -> None:
    assert [(s.name, s.type, s.default) for s in PIPELINE_SETTINGS] == [
        ("partitions_start", str, ""),
        ("schedule_minute", int, 10),
        ("sensor_interval", int, 60),
        ("archive_older_than", str, "7d"),
        ("archive_cron", str, "30 2 * * *"),
        ("lease_wait", float, 30.0),
        ("backfill_hours_per_run", int, 168),
    ]
    assert all(s.help and s.env == "TICKLAKE_" + s.name.upper() for s in SETTINGS + PIPELINE_SETTINGS)
    assert LakeConfig() == LakeConfig.from_env({}) and PipelineSettings() == PipelineSettings.from_env({})


@pytest.mark.parametrize(
    ("variable", "text", "message"),
    [
        ("TICKLAKE_SEGMENT_RETENTION_HOURS", "a week", "TICKLAKE_SEGMENT_RETENTION_HOURS='a week': expected a finite number"),
        ("TICKLAKE_ZSTD_LEVEL", "3.5", "TICKLAKE_ZSTD_LEVEL='3.5': expected an integer"),
        ("TICKLAKE_LEASE_WAIT", "30s", "TICKLAKE_LEASE_WAIT='30s': expected a finite number"),
        ("TICKLAKE_LEASE_WAIT", "nan", "TICKLAKE_LEASE_WAIT='nan': expected a finite number"),
        ("TICKLAKE_SEGMENT_RETENTION_HOURS", "inf", "TICKLAKE_SEGMENT_RETENTION_HOURS='inf': expected a finite number"),
        ("TICKLAKE_SENSOR_INTERVAL", "1m", "TICKLAKE_SENSOR_INTERVAL='1m': expected an integer"),
        ("TICKLAKE_THREADS", " 7 ", "TICKLAKE_THREADS=' 7 ': expected an integer"),
        ("TICKLAKE_THREADS", "1_000", "TICKLAKE_THREADS='1_000': expected an integer"),
        ("TICKLAKE_THREADS", "\u0663", "TICKLAKE_THREADS='\u0663': expected an integer"),
        ("TICKLAKE_THREADS", "99999999999999999999", "TICKLAKE_THREADS='99999999999999999999': must be between 0 and 1024"),
        ("TICKLAKE_ZSTD_LEVEL", "99", "TICKLAKE_ZSTD_LEVEL='99': must be between 1 and 22"),
        ("TICKLAKE_BLOOM_FPP", "1", "TICKLAKE_BLOOM_FPP='1': must be between 0 and 1, exclusive"),
        ("TICKLAKE_SEGMENT_MAX_BYTES", "10", "TICKLAKE_SEGMENT_MAX_BYTES='10': must be between 1024 and 1099511627776"),
        ("TICKLAKE_SEGMENT_RETENTION_HOURS", "-1", "TICKLAKE_SEGMENT_RETENTION_HOURS='-1': must not be negative"),
        ("TICKLAKE_LEASE_WAIT", "-1", "TICKLAKE_LEASE_WAIT='-1': must not be negative"),
        ("TICKLAKE_SCHEDULE_MINUTE", "60", "TICKLAKE_SCHEDULE_MINUTE='60': must be between 0 and 59"),
        ("TICKLAKE_SENSOR_INTERVAL", "0", "TICKLAKE_SENSOR_INTERVAL='0': must be at least 1"),
        (
            "TICKLAKE_PARTITIONS_START",
            "2021-06-01",
            "TICKLAKE_PARTITIONS_START='2021-06-01': expected YYYY-MM-DD-HH:MM, e.g. 2020-01-01-00:00",
        ),
    ],
)
def test_a_bad_value_names_its_variable(variable: str, text: str, message: str) -> None:
    read = PipelineSettings.from_env if variable in {s.env for s in PIPELINE_SETTINGS} else LakeConfig.from_env
    with pytest.raises(ConfigError) as raised:
        read({variable: text})
    assert str(raised.value) == message


def test_overrides_beat_the_environment_and_none_is_not_given() -> None:
    env = {"TICKLAKE_ROOT": "/from/env", "TICKLAKE_THREADS": "4"}
    config = LakeConfig.from_env(env, root="/given", threads=None)
    assert (config.root, config.threads) == (Path("/given"), 4)
    with pytest.raises(ConfigError, match="^unknown setting\\(s\\): colour$"):
        LakeConfig.from_env({}, colour="blue")


def test_empty_values_are_ignored() -> None:
    assert LakeConfig.from_env({s.env: "" for s in SETTINGS}) == LakeConfig()
    assert PipelineSettings.from_env({s.env: "" for s in PIPELINE_SETTINGS}) == PipelineSettings()


def test_values_given_in_code_are_checked_by_the_same_rules() -> None:
    with pytest.raises(ConfigError, match="^lease_wait must not be negative, got -1.0$"):
        PipelineSettings(lease_wait=-1.0)
    with pytest.raises(ConfigError, match="^zstd_level must be between 1 and 22, got 23$"):
        LakeConfig(zstd_level=23)
    with pytest.raises(ConfigError, match="^threads must be between 0 and 1024, got 2000$"):
        LakeConfig.from_env({}, threads=2000)


def test_nothing_is_read_at_import(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TICKLAKE_LEASE_WAIT", "7")
    assert PipelineSettings().lease_wait == 30.0 and PipelineSettings.from_env().lease_wait == 7.0
