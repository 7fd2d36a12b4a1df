"""The Dagster UI in a real browser: headless Chromium renders the asset pages of the running webserver.

The rendered DOM must show both assets and their hourly partitions with the counts the GraphQL API
reports; screenshots are kept as test artifacts (`tests/artifacts/`, or `$TICKLAKE_TEST_ARTIFACTS`).
"""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.pipelines.dagster_service import ROOT, DagsterService, shared_service

pytestmark = pytest.mark.slow  # real servers (and a browser): run by the test command, skipped by -m 'not slow'

PARTITION = "2022-01-07-04:00"  # a key the end-to-end test materializes when it runs first
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-proxy-server",
    "--virtual-time-budget=20000",  # without it the page is captured before Dagster's UI has rendered
    "--window-size=1400,900",
)

MATERIALIZED = """query($partition: String!) { assetOrError(assetKey: {path: ["ticks"]}) { __typename
  ... on Asset { assetMaterializations(partitions: [$partition], limit: 1) { partition } } } }"""

PARTITION_STATS = """query($path: [String!]!) { assetNodeOrError(assetKey: {path: $path}) { __typename
  ... on AssetNode { partitionStats { numMaterialized numFailed numPartitions } } } }"""


def artifacts_dir() -> Path:
    """Where screenshots go: `$TICKLAKE_TEST_ARTIFACTS`, else `tests/artifacts/` (ignored by git)."""
    folder = Path(os.environ.get("TICKLAKE_TEST_ARTIFACTS") or ROOT / "tests" / "artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def chromium() -> str:
    """Debian's Chromium; a missing browser fails the test (CI must never skip it silently)."""
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    pytest.fail("chromium not found: run 'bash infra/browser.sh' (as root it installs Debian's chromium) or install it")


def render(url: str, profile: Path, screenshot: Path | None = None) -> str:
    """The visible text of `url` after Dagster's UI rendered it, optionally saving a screenshot."""
    args = [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom"]
    if screenshot is not None:
        args.append(f"--screenshot={screenshot}")
    result = subprocess.run([*args, url], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", result.stdout, flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", body)))


def assert_png(path: Path) -> None:
    """A real screenshot: a PNG file, larger than a blank page compresses to."""
    assert path.exists(), f"no screenshot at {path}"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path
    assert path.stat().st_size > 20_000, f"{path}: {path.stat().st_size} bytes, looks blank"


@pytest.fixture(scope="module")
def dagster(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> DagsterService:
    """The session's webserver, with Dagster's first-visit pop-up dismissed (it would cover the page)."""
    service = shared_service(request.config, tmp_path_factory)
    service.graphql("mutation { setNuxSeen }")
    return service


def stats(dagster: DagsterService, asset: str) -> dict[str, int]:
    node = dagster.graphql(PARTITION_STATS, {"path": [asset]})["assetNodeOrError"]
    assert node["__typename"] == "AssetNode", node
    return dict(node["partitionStats"])


def assert_shown(text: str, template: str, counts: list[dict[str, int]]) -> None:
    """`template` filled with the counts from before or after rendering: a new hour (or a scheduled
    run) may change them while the page loads."""
    options = {template.format(**c) for c in counts}
    assert any(option in text for option in options), (options, text)


def test_asset_catalog_lists_both_hourly_assets(dagster: DagsterService, tmp_path: Path) -> None:
    shot = artifacts_dir() / "dagster-asset-catalog.png"
    shot.unlink(missing_ok=True)
    before = {asset: stats(dagster, asset) for asset in ("ticks", "bars_1m")}
    text = render(f"{dagster.url}/assets", tmp_path / "profile", shot)
    for asset, counts in before.items():
        assert re.search(rf"\b{asset}\b", text), (asset, text)
        assert_shown(text, "{numPartitions:,} partitions", [counts, stats(dagster, asset)])
    assert_png(shot)


def test_ticks_partitions_page_shows_partitions_and_their_status(dagster: DagsterService, tmp_path: Path) -> None:
    shot = artifacts_dir() / "dagster-ticks-partitions.png"
    shot.unlink(missing_ok=True)
    before = stats(dagster, "ticks")
    text = render(f"{dagster.url}/assets/ticks?view=partitions&partition={PARTITION}", tmp_path / "profile", shot)
    counts = [before, stats(dagster, "ticks")]
    assert_shown(text, "{numPartitions:,} Partitions", counts)
    assert_shown(text, "Materialized ({numMaterialized})", counts)
    assert_shown(text, "Failed ({numFailed})", counts)
    assert PARTITION in text, text
    materialized = dagster.graphql(MATERIALIZED, {"partition": PARTITION})["assetOrError"]["assetMaterializations"]
    if materialized:  # the selected partition's panel: its status badge and the run's job
        assert f"{PARTITION} Materialized" in text and "hourly_compaction_job" in text, text
    else:
        assert "Latest materialization None" in text, text
    assert_png(shot)


def test_ticks_overview_links_bars_downstream(dagster: DagsterService, tmp_path: Path) -> None:
    text = render(f"{dagster.url}/assets/ticks", tmp_path / "profile")
    assert re.search(r"Downstream assets.*\bbars_1m\b", text), text
    assert "hourly_compaction_job" in text, text
