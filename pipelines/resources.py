"""The `lake` resource: which lake the assets, checks and sensor work on."""

from __future__ import annotations

from dagster import ConfigurableResource
from pydantic import Field

from ticklake.config import LakeConfig


class LakeResource(ConfigurableResource):
    """A lake, resolved like the CLI's: `root` when given, else $TICKLAKE_ROOT, else ./lakehouse;
    the other TICKLAKE_* settings apply as well. Resolved when a run starts, not at import."""

    root: str = Field(default="", description="Lake root folder; empty: $TICKLAKE_ROOT, else ./lakehouse.")
    lease_wait: float = Field(
        default=30.0,
        description="Seconds to wait for another run's lease on the same partition before failing (the retry policy retries).",
    )

    def lake_config(self) -> LakeConfig:
        """The lake's configuration, read now."""
        return LakeConfig.from_env(root=self.root or None)
