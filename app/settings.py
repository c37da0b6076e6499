"""The one Settings object: every knob is an environment variable prefixed ``LAYERSCOPE_``.

The CLI's flags override these by setting the same fields; nothing else reads the
environment for configuration.
"""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LAYERSCOPE_", extra="ignore")

    host: str = Field("127.0.0.1", description="Address the server binds to.")
    port: int = Field(8000, description="Port the server listens on.")
    default_model: str = Field("tiny", description="Model the page opens with.")
    models: str = Field("tiny,alexnet", description="Comma-separated model ids to load.")
    alexnet_weights: str | None = Field(
        None, description="Path to AlexNet ImageNet weights (.pth state dict or .safetensors)."
    )
    config: str | None = Field(
        None, description="A TOML file of your own models: every [models.ID] table is served besides the models."
    )
    max_body_bytes: int = Field(10 * 1024 * 1024, description="Largest request body accepted.")
    max_pixels: int = Field(16_777_216, description="Largest image (width x height) decoded.")
    cache_entries: int = Field(64, description="Results kept in the in-memory LRU cache.")
    queue_size: int = Field(8, description="Requests allowed to wait beyond the running one.")
    # The heavy lane (app/heavy.py): long jobs such as on-demand feature visualizations.
    heavy_jobs: int = Field(1, ge=1, description="Long jobs (on-demand feature visualizations) run at once.")
    heavy_queue: int = Field(4, ge=0, description="Long jobs allowed to wait beyond the running ones.")
    retry_after_s: int = Field(1, description="Retry-After seconds sent with 503 when full.")
    torch_threads: int = Field(
        2, description="Intra-op threads for the inference thread (a model may use fewer: tiny uses one)."
    )
    # AlexNet's fully connected layers read ~230 MB of weights per pass, the same for 1 picture or 8.
    max_batch: int = Field(
        8, ge=1, description="Waiting pictures that may share one forward pass; 1 = no micro-batching."
    )
    # One per core of the 2-core machine the server was tuned on.
    cpu_workers: int = Field(2, ge=1, description="Threads that decode and encode around the inference thread.")
    batch_wait_ms: float = Field(
        10.0, ge=0, description="How long a free inference thread waits for pictures still being decoded."
    )
    # Abuse limits (docs/RELIABILITY.md lists every one with its variable).
    rate_limit: int = Field(600, ge=0, description="API POSTs per minute per anonymous client; 0 = off.")
    rate_limit_keyed: int = Field(3000, ge=0, description="API POSTs per minute per API key; 0 = off.")
    # The page has at most four such requests open at once: activations, Grad-CAM, a unit, its backprop.
    client_inflight: int = Field(
        4, ge=0, description="Requests that make the model work one client may have in flight; 0 = no cap."
    )
    client_heavy: int = Field(1, ge=0, description="Long jobs one client may have running or waiting; 0 = no cap.")
    api_keys: str = Field("", description="Comma-separated API keys (X-API-Key) that get the keyed limit.")
    trusted_proxies: str = Field(
        "", description="Comma-separated proxy IPs/CIDRs whose X-Forwarded-For is believed."
    )
    min_body_rate: int = Field(1024, ge=0, description="Bytes/s an upload must average; slower is cut (408).")
    body_grace_s: float = Field(5.0, gt=0, description="Seconds an upload may take before its rate is checked.")
    redis_url: str | None = Field(
        None,
        description="Redis (redis://host:6379/0) where every replica counts the per-client limits; unset = in memory.",
    )
    graceful_shutdown_s: int = Field(15, ge=0, description="Seconds in-flight requests get on SIGTERM.")
    # Teaching (app/teach.py): sessions live in memory, hold features, never pictures.
    teach_sessions: int = Field(64, ge=1, description="Teaching sessions held at once (429 beyond).")
    teach_examples: int = Field(300, ge=1, description="Examples one teaching session holds (409 beyond).")
    teach_idle_s: float = Field(1800.0, gt=0, description="Seconds a teaching session lives untouched.")
    # A live run trains a network on this server for up to three minutes: for a classroom
    # machine (``make run`` turns it on), not for a public deployment.
    live_training: bool = Field(False, description="Allow live training runs (POST /api/v1/live).")

    @property
    def model_ids(self) -> list[str]:
        return [m.strip() for m in self.models.split(",") if m.strip()]


@lru_cache
def get_settings() -> Settings:
    return Settings()
