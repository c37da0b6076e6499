"""``layerscope serve --ray`` on a real local Ray instance, started by the module and stopped at its end.

One ``serve --ray --replicas 2`` subprocess starts its own Ray instance (2 CPUs, one per
replica) and deploys the app; the tests talk to it over HTTP, as a browser would, and join
its Ray instance as a driver only to find and kill a replica. A real ``redis-server`` holds
the limits the two replicas share. The last test sends SIGTERM and checks the app, Serve and
the Ray instance are gone.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from fastapi.testclient import TestClient

from app.main import create_app
from tests.app.conftest import ACTIVATIONS, make_settings
from tests.app.redis_server import redis_server
from tests.app.scale.test_deployment import manifest
from tests.conftest import free_port

RAY_FIELDS = "Using extra keyword arguments on `Field` is deprecated"
with warnings.catch_warnings():
    # Ray's own models still pass pydantic v1-style keywords to Field; not our code.
    warnings.filterwarnings("ignore", RAY_FIELDS, DeprecationWarning)
    import ray
    from ray import serve

    from app.scale.deployment import APP_NAME, DEPLOYMENT

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings(f"ignore:{RAY_FIELDS}:DeprecationWarning")]
KEY = "shared-key"
KEYED_PER_MINUTE = 10
# What the replicas run with: small, so two fit on two cores beside the tests.
KNOBS = {"torch_threads": 1, "cpu_workers": 1, "queue_size": 1}
READY = re.compile(r"LayerScope on Ray Serve at (\S+) \(Ray at (\S+)\)")


@dataclass
class Served:
    process: subprocess.Popen[str]
    url: str
    gcs: str
    lines: list[str] = field(default_factory=list)


def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (read from /proc), at this moment."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def assert_all_end(pids: set[int], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while any(alive(pid) for pid in pids):
        assert time.monotonic() < deadline, [pid for pid in pids if alive(pid)]
        time.sleep(0.2)


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with redis_server() as url:
        yield url


@contextmanager
def ray_token() -> Iterator[dict[str, str]]:
    """One token for the Ray instance the module starts and for this process joining it.

    A new local Ray instance turns on token authentication and writes ~/.ray/auth_token when
    none exists; a process that imported ray before that file existed has already read its
    settings as "no token" and cannot join. So the test makes the token, hands it to both by
    the environment, and refreshes this process's cached settings (as Ray's own test helpers do),
    which also leaves ~/.ray alone.
    """
    from ray._raylet import AuthenticationTokenLoader, Config  # type: ignore[attr-defined]

    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    with pytest.MonkeyPatch.context() as patch:
        for name, value in auth.items():
            patch.setenv(name, value)
        patch.delenv("RAY_AUTH_TOKEN_PATH", raising=False)
        Config.initialize("")
        AuthenticationTokenLoader.instance().reset_cache()
        yield auth


@pytest.fixture(scope="module")
def served(redis_url: str) -> Iterator[Served]:
    with ray_token() as auth:
        yield from _served(redis_url, auth)


def _served(redis_url: str, auth: dict[str, str]) -> Iterator[Served]:
    port = free_port()
    env = {
        **os.environ,
        **auth,
        "LAYERSCOPE_MODELS": "tiny",
        "LAYERSCOPE_RATE_LIMIT": "0",
        "LAYERSCOPE_CLIENT_INFLIGHT": "0",  # every test client here is 127.0.0.1
        "LAYERSCOPE_API_KEYS": KEY,
        "LAYERSCOPE_RATE_LIMIT_KEYED": str(KEYED_PER_MINUTE),
        "LAYERSCOPE_REDIS_URL": redis_url,
        **{f"LAYERSCOPE_{k.upper()}": str(v) for k, v in KNOBS.items()},
    }
    command = [sys.executable, "-m", "app.cli", "serve", "--ray", "--replicas", "2", "--port", str(port)]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    lines: list[str] = []
    ready = threading.Event()
    found: dict[str, str] = {}

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            match = READY.search(line)
            if match:
                found.update(url=match[1], gcs=match[2])
                ready.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert ready.wait(240), "serve --ray did not come up in 240 s:\n" + "".join(lines[-40:])
        ray.init(address=found["gcs"], log_to_driver=False)
        yield Served(process, found["url"], found["gcs"], lines)
    finally:
        if ray.is_initialized():
            ray.shutdown()
        if process.poll() is None:  # a test failed before the SIGTERM test: stop what it started
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
        reader.join(10)
        if process.stdout is not None:
            process.stdout.close()


def replica_of(response: httpx.Response) -> str:
    return response.headers["x-layerscope-replica"]


def without_timings(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != "timings_ms"}


def test_answers_equal_a_plain_servers(served: Served, make_image: Callable[..., bytes]) -> None:
    picture = make_image(seed=3)
    headers = {"content-type": "image/png"}
    with TestClient(create_app(make_settings(**KNOBS))) as plain:
        expected = plain.post(ACTIVATIONS, content=picture, headers=headers)
        page = plain.get("/")
        schema = plain.get("/openapi.json").json()
    with httpx.Client(base_url=served.url, timeout=60) as client:
        answers = [client.post(ACTIVATIONS, content=picture, headers=headers) for _ in range(4)]
        served_page = client.get("/")
        docs = client.get("/openapi.json")
    assert expected.status_code == 200
    assert {r.status_code for r in answers} == {200}
    for answer in answers:
        assert without_timings(answer.json()) == without_timings(expected.json())
        assert answer.headers["content-type"] == expected.headers["content-type"]
    assert served_page.status_code == 200 and served_page.text == page.text
    assert docs.status_code == 200 and docs.json() == schema


def test_two_replicas_both_serve(served: Served) -> None:
    with httpx.Client(base_url=served.url, timeout=30) as client:
        seen = Counter(replica_of(client.get("/healthz")) for _ in range(40))
    assert len(seen) == 2, seen
    for replica in seen:  # each id names a live Serve replica of this app
        actor = ray.get_actor(f"SERVE_REPLICA::{APP_NAME}#{DEPLOYMENT}#{replica}", namespace="serve")
        assert actor is not None


def test_the_replicas_share_one_rate_limit_through_redis(served: Served) -> None:
    headers = {"content-type": "image/png", "x-api-key": KEY}
    with httpx.Client(base_url=served.url, timeout=30) as client:
        answers = [client.post(ACTIVATIONS, content=b"junk", headers=headers) for _ in range(KEYED_PER_MINUTE + 6)]
    assert len({replica_of(r) for r in answers}) == 2  # both replicas spent from it
    statuses = [r.status_code for r in answers]
    # One allowance for the key, whichever replica answers (in memory each would allow 10).
    assert statuses.count(415) == KEYED_PER_MINUTE and statuses.count(429) == 6
    refused = next(r for r in answers if r.status_code == 429)
    assert refused.headers["content-type"] == "application/problem+json" and "retry-after" in refused.headers


def test_a_full_replica_answers_our_own_503(served: Served, make_image: Callable[..., bytes]) -> None:
    picture = make_image(1600, 1200, seed=5)
    results: list[httpx.Response] = []
    together = threading.Barrier(24)

    def post() -> None:
        with httpx.Client(base_url=served.url, timeout=90) as client:
            client.get("/healthz")  # connected before the barrier
            together.wait(60)
            headers = {"content-type": "image/png"}
            results.append(client.post(f"{ACTIVATIONS}?format=npz", content=picture, headers=headers))

    threads = [threading.Thread(target=post) for _ in range(24)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    statuses = Counter(r.status_code for r in results)
    assert len(results) == 24 and set(statuses) <= {200, 503}, statuses
    assert statuses[503] > 0, statuses  # 2 replicas x (1 running + 1 queued) admit 4 at once
    ours = [r for r in results if r.status_code == 503 and r.headers["content-type"] == "application/problem+json"]
    assert ours, statuses  # the engine refuses model work past a replica's capacity first
    for refused in ours:
        assert refused.json()["type"].endswith("/busy") and refused.headers["retry-after"] == "1"
    # When the router's queue overflows as well (a loaded machine routes slowly), Serve answers
    # itself, with a body it gives no hook to change: still a 503 with Retry-After.
    for refused in (r for r in results if r.status_code == 503 and r not in ours):
        assert "backpressure" in refused.text and refused.headers["retry-after"] == "1", refused.text


def test_a_killed_replica_is_replaced_and_the_service_keeps_answering(
    served: Served, make_image: Callable[..., bytes]
) -> None:
    picture = make_image(seed=7)
    with httpx.Client(base_url=served.url, timeout=30) as client:
        before = {replica_of(client.get("/healthz")) for _ in range(20)}
    assert len(before) == 2
    outcomes: list[tuple[int, str, int]] = []  # final status, replica, tries
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(base_url=served.url, timeout=30) as client:
            while not stop.is_set():
                tries = 0
                while True:  # a client that retries on 503, boundedly
                    tries += 1
                    answer = client.post(ACTIVATIONS, content=picture, headers={"content-type": "image/png"})
                    if answer.status_code != 503 or tries >= 30:
                        break
                    time.sleep(float(answer.headers.get("retry-after", "1")) / 4)
                outcomes.append((answer.status_code, answer.headers.get("x-layerscope-replica", ""), tries))

    workers = [threading.Thread(target=load) for _ in range(3)]
    for worker in workers:
        worker.start()
    time.sleep(2.0)
    victim = sorted(before)[0]
    killed_at = len(outcomes)
    ray.kill(ray.get_actor(f"SERVE_REPLICA::{APP_NAME}#{DEPLOYMENT}#{victim}", namespace="serve"), no_restart=True)
    deadline = time.monotonic() + 150
    while not any(replica not in before for _, replica, _ in outcomes[killed_at:]):
        assert time.monotonic() < deadline, Counter(o[:2] for o in outcomes[killed_at:])
        time.sleep(0.5)
    time.sleep(2.0)
    stop.set()
    for worker in workers:
        worker.join(60)
    after = outcomes[killed_at:]
    replicas_after = {replica for _, replica, _ in after[-6:]}
    failed = [o for o in after if o[0] != 200]
    # At most the requests that were inside the victim when it died fail (one per worker);
    # everything else is answered, by the survivor and then by the replacement too.
    assert len(failed) <= len(workers), Counter(o[0] for o in after)
    assert victim not in replicas_after and all(status == 200 for status, _, _ in after[-6:])
    assert any(replica not in before for _, replica, _ in after)


def test_joining_a_cluster_deploys_there_and_sigterm_removes_only_the_app(served: Served) -> None:
    # A second `serve --ray` joins the first one's Ray instance: it redeploys the app there
    # (Serve's HTTP proxy, already running, keeps its address), then on SIGTERM removes the
    # app and leaves the cluster it did not start running.
    env = {**os.environ, "LAYERSCOPE_MODELS": "tiny", **{f"LAYERSCOPE_{k.upper()}": str(v) for k, v in KNOBS.items()}}
    command = [sys.executable, "-m", "app.cli", "serve", "--ray", "--ray-address", served.gcs, "--replicas", "1"]
    joined = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert joined.stdout is not None
    lines = []
    for line in joined.stdout:
        lines.append(line)
        if READY.search(line):
            break
    assert joined.poll() is None, "".join(lines[-30:])
    with httpx.Client(base_url=served.url, timeout=30) as client:
        assert len({replica_of(client.get("/healthz")) for _ in range(10)}) == 1  # its one replica
        joined.send_signal(signal.SIGTERM)
        assert joined.wait(90) == 0
        lines += joined.stdout.readlines()
        joined.stdout.close()
        assert f"Deleting app ['{APP_NAME}']" in "".join(lines)
        assert client.get("/healthz").status_code == 404  # Serve's proxy is up, the app is gone
    assert APP_NAME not in serve.status().applications
    assert served.process.poll() is None and ray.is_initialized()


def test_the_documented_serve_config_deploys_through_the_builder(
    served: Served, redis_url: str, tmp_path: Path, make_image: Callable[..., bytes]
) -> None:
    # The KubeRay manifest's serveConfigV2, run with Serve's own `serve run`, as KubeRay
    # would apply it: only what this machine lacks is changed (no GPU, two CPUs, Serve's
    # proxy already listening, this test's Redis).
    service = next(d for d in manifest() if d["kind"] == "RayService")
    config = yaml.safe_load(service["spec"]["serveConfigV2"])
    del config["http_options"]
    (app,) = config["applications"]
    app["args"] = {**app["args"], "models": "tiny", "redis_url": redis_url, **{k: str(v) for k, v in KNOBS.items()}}
    (deployment,) = app["deployments"]
    deployment["ray_actor_options"] = {"num_cpus": 1}
    deployment["autoscaling_config"] = {**deployment["autoscaling_config"], "min_replicas": 1, "max_replicas": 2}
    path = tmp_path / "serve.yaml"
    path.write_text(yaml.safe_dump(config))
    serve_cli = Path(sys.executable).parent / "serve"
    subprocess.run([str(serve_cli), "run", "--address", served.gcs, "--non-blocking", str(path)],
                   cwd=tmp_path, timeout=240, check=True, capture_output=True)
    deadline = time.monotonic() + 120
    with httpx.Client(base_url=served.url, timeout=30) as client:
        while client.get("/healthz").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.5)
        answer = client.post(ACTIVATIONS, content=make_image(seed=11), headers={"content-type": "image/png"})
    assert answer.status_code == 200 and answer.json()["model"] == "tiny"
    assert "x-layerscope-replica" in answer.headers


def test_sigterm_removes_the_app_and_the_ray_instance_it_started(served: Served) -> None:
    below = descendants(served.process.pid)
    ray_processes = {pid for pid in below if "gcs_server" in Path(f"/proc/{pid}/cmdline").read_text(errors="replace")}
    assert ray_processes, "the Ray instance runs below serve --ray"
    ray.shutdown()  # the test's own connection first: it must not keep anything alive
    started = time.monotonic()
    served.process.send_signal(signal.SIGTERM)
    assert served.process.wait(90) == 0, "".join(served.lines[-30:])
    assert time.monotonic() - started < 90
    assert_all_end(below)
    host, port = served.url.removeprefix("http://").rsplit(":", 1)
    with socket.socket() as probe, pytest.raises(OSError):
        probe.settimeout(1)
        probe.connect((host, int(port)))
    gcs_host, gcs_port = served.gcs.rsplit(":", 1)
    with socket.socket() as probe, pytest.raises(OSError):
        probe.settimeout(1)
        probe.connect((gcs_host, int(gcs_port)))
    assert f"Deleting app ['{APP_NAME}']" in "".join(served.lines)


DIRECT = re.compile(r"Replicas answering directly \(Serve's direct ingress\): (\S+)")


@dataclass
class Started:
    process: subprocess.Popen[str]
    direct: str  # the first replica's own address
    lines: list[str]


@contextmanager
def serve_until_direct(flags: list[str], port: int, env: dict[str, str]) -> Iterator[Started]:
    """``serve --ray <flags> --port <port>`` (its own Ray, with the test's token) until it says
    where the replicas answer by themselves; killed at the end if a test left it running."""
    with ray_token() as auth:
        env = {**os.environ, **auth, "LAYERSCOPE_MODELS": "tiny",
               **{f"LAYERSCOPE_{k.upper()}": str(v) for k, v in KNOBS.items()}, **env}
        command = [sys.executable, "-m", "app.cli", "serve", "--ray", *flags, "--port", str(port)]
        process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                   start_new_session=True)
        lines: list[str] = []
        try:
            assert process.stdout is not None
            direct = None
            deadline = time.monotonic() + 240
            for line in process.stdout:
                lines.append(line)
                if match := DIRECT.search(line):
                    direct = match[1]
                    break
                assert time.monotonic() < deadline, "".join(lines[-30:])
            assert direct is not None and direct.startswith("http://127.0.0.1:"), "".join(lines[-30:])
            yield Started(process, direct, lines)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
            if process.stdout is not None:
                process.stdout.close()


def test_direct_ingress_replicas_answer_by_themselves(make_image: Callable[..., bytes]) -> None:
    # Serve's direct ingress: besides the proxy, each replica answers HTTP on a port of its own
    # (from --port + 1 on), with the same answers; SIGTERM still takes everything down.
    port = free_port()
    with serve_until_direct(["--direct-ingress"], port, {"LAYERSCOPE_RATE_LIMIT": "0"}) as started:
        assert int(started.direct.rsplit(":", 1)[1]) > port  # the first free port past the proxy's
        picture = make_image(seed=5)
        headers = {"content-type": "image/png"}
        with httpx.Client(timeout=60) as client:
            through_proxy = client.post(f"http://127.0.0.1:{port}{ACTIVATIONS}", content=picture, headers=headers)
            by_itself = client.post(f"{started.direct}{ACTIVATIONS}", content=picture, headers=headers)
            page = client.get(f"{started.direct}/")
        assert through_proxy.status_code == by_itself.status_code == page.status_code == 200
        assert without_timings(by_itself.json()) == without_timings(through_proxy.json())
        assert replica_of(by_itself) == replica_of(through_proxy)  # the one replica, two ways in
        started.process.send_signal(signal.SIGTERM)
        assert started.process.wait(90) == 0, "".join(started.lines[-30:])


def test_haproxy_ingress_spreads_pictures_over_the_replicas_and_leaves_nothing_behind(
    make_image: Callable[..., bytes],
) -> None:
    # Serve's HAProxy at --port, over two replicas' own ports: a plain server's answers, both
    # replicas answering, the page; SIGTERM ends everything, HAProxy's process included.
    port = free_port()
    off = {"LAYERSCOPE_RATE_LIMIT": "0", "LAYERSCOPE_CLIENT_INFLIGHT": "0", "LAYERSCOPE_CLIENT_HEAVY": "0"}
    picture = make_image(seed=7)
    headers = {"content-type": "image/png"}
    with TestClient(create_app(make_settings(**KNOBS))) as plain:
        expected = plain.post(ACTIVATIONS, content=picture, headers=headers)
        page = plain.get("/")
    with serve_until_direct(["--ingress", "haproxy", "--replicas", "2"], port, off) as started:
        haproxy = {pid for pid in descendants(started.process.pid)
                   if "haproxy" in Path(f"/proc/{pid}/cmdline").read_text(errors="replace")}
        assert haproxy, "HAProxy runs below serve --ray"
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            answers = [client.post(ACTIVATIONS, content=picture, headers=headers) for _ in range(6)]
            served_page = client.get("/")
        assert expected.status_code == 200 and {r.status_code for r in answers} == {200}
        for answer in answers:
            assert without_timings(answer.json()) == without_timings(expected.json())
        assert len({replica_of(r) for r in answers}) == 2  # HAProxy spreads them
        assert served_page.status_code == 200 and served_page.text == page.text
        below = descendants(started.process.pid)
        started.process.send_signal(signal.SIGTERM)
        assert started.process.wait(90) == 0, "".join(started.lines[-30:])
        assert_all_end(below)
        with socket.socket() as probe, pytest.raises(OSError):
            probe.settimeout(1)
            probe.connect(("127.0.0.1", port))
