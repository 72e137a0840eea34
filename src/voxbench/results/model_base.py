"""The base of every result-document model, and the distribution summary they share."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

MODEL_CONFIG = ConfigDict(extra="forbid")
"""Every document model's configuration: unknown keys are errors, not silently dropped. (Each
module's models derive from a local ``BaseModel`` subclass with it, so that linters see pydantic
models.)"""


class Summary(BaseModel):
    """A distribution of raw samples (milliseconds unless the field name says otherwise)."""

    model_config = MODEL_CONFIG

    n: int
    min: float
    median: float
    mean: float
    p90: float
    p95: float
    p99: float
    max: float
    stdev: float
    ci95: tuple[float, float] | None = Field(
        None, description="percentile-bootstrap 95% confidence interval of the median"
    )
