"""The `lake` resource: which lake the assets, checks and sensor work on."""

from __future__ import annotations

from dagster import ConfigurableResource
from pydantic import Field

from ticklake.config import LakeConfig
from ticklake.pipelines.settings import PipelineSettings


class LakeResource(ConfigurableResource):
    """A lake, resolved like the CLI's: `root` when given, else $TICKLAKE_ROOT, else ./lakehouse;
    the other TICKLAKE_* settings apply as well. Resolved when a run starts, not at import."""

    root: str = Field(default="", description="Lake root folder; empty: $TICKLAKE_ROOT, else ./lakehouse.")
    lease_wait: float | None = Field(
        default=None,
        description="Seconds to wait for another run's partition lease; empty: $TICKLAKE_LEASE_WAIT, else 30.",
    )

    def lake_config(self) -> LakeConfig:
        """The lake's configuration, read now."""
        return LakeConfig.from_env(root=self.root or None)

    def effective_lease_wait(self) -> float:
        """Seconds to wait for a partition lease: `lease_wait` when given, else the pipeline setting, read now."""
        return self.lease_wait if self.lease_wait is not None else PipelineSettings.from_env().lease_wait
