"""The staged, micro-batching engine (app/inference.py) and the stages it runs (app/pipeline.py).

Engine tests use plain functions for the stages, so they check scheduling only: batches
form from requests that wait, never mix keys, stay under the cap, route every answer to
its own caller; admission still refuses at once past ``1 + queue_size``. Pipeline tests
check that a batched forward pass gives each picture what a batch of one gives it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image

from app import pipeline
from app.encode import denormalized_png
from app.errors import ProblemError
from app.imaging import decode_image, preprocess_image
from app.inference import Engine, Stages, pool_map
from app.main import create_app
from app.pipeline import Options, finish, infer, intra_op_threads, pass_threads, prepare, unfamiliarity
from models.zoo.registry import load_registry
from tests.app.conftest import ACTIVATIONS, make_settings
from tests.conftest import encode, scene

MAX_PIXELS = 16_777_216


def engine(queue_size: int = 8, max_batch: int = 8, batch_wait_s: float = 0.01) -> Engine:
    return Engine(
        torch_threads=1,
        queue_size=queue_size,
        cache_entries=0,
        retry_after_s=1,
        max_batch=max_batch,
        cpu_workers=2,
        batch_wait_s=batch_wait_s,
    )


class Recorder:
    """A forward stage that remembers its batches and can be held until released."""

    def __init__(self, hold: threading.Event | None = None, fail_on: object = None) -> None:
        self.batches: list[list[Any]] = []
        self.hold = hold
        self.fail_on = fail_on

    def __call__(self, items: list[Any]) -> list[Any]:
        if self.hold is not None:
            self.hold.wait(10)
        self.batches.append(list(items))
        if self.fail_on in items:
            raise ValueError(f"bad item {self.fail_on}")
        return [("forward", item) for item in items]


def stages(item: Any, key: Any, forward: Callable[[list[Any]], list[Any]]) -> Stages[Any, Any, Any]:
    return Stages(
        before=lambda: ("before", item),
        batch_key=key,
        forward=forward,
        after=lambda prepared, output: (prepared, output),
    )


async def settle() -> None:
    """Let submitted requests reach the engine's waiting list (their ``before`` runs on a thread)."""
    for _ in range(200):
        await asyncio.sleep(0.005)


def test_a_lone_request_runs_at_once_and_alone() -> None:
    async def scenario() -> None:
        eng = engine()
        forward = Recorder()
        try:
            result = await eng.run_staged(stages(1, "k", forward))
            assert result == (("before", 1), ("forward", ("before", 1)))
            assert forward.batches == [[("before", 1)]]
            assert eng.in_flight == 0
        finally:
            eng.shutdown()

    asyncio.run(scenario())


def test_waiting_requests_share_a_forward_pass_and_get_their_own_answers() -> None:
    async def scenario() -> None:
        eng = engine()
        hold = threading.Event()
        forward = Recorder(hold)
        try:
            first = asyncio.ensure_future(eng.run_staged(stages(0, "k", forward)))
            await settle()  # the first holds the inference thread; the others now wait
            rest = [asyncio.ensure_future(eng.run_staged(stages(i, "k", forward))) for i in range(1, 7)]
            await settle()
            hold.set()
            results = await asyncio.gather(first, *rest)
            for i, result in enumerate(results):
                assert result == (("before", i), ("forward", ("before", i)))
            assert [len(b) for b in forward.batches] == [1, 6]
            assert eng.batches == {1: 1, 6: 1}
            assert eng.in_flight == 0
        finally:
            eng.shutdown()

    asyncio.run(scenario())


def test_a_free_inference_thread_waits_briefly_for_pictures_still_being_decoded() -> None:
    async def scenario() -> None:
        eng = engine(batch_wait_s=2.0)
        hold = threading.Event()
        forward = Recorder(hold)
        try:
            first = asyncio.ensure_future(eng.run_staged(stages(0, "k", forward)))
            await settle()
            fast = asyncio.ensure_future(eng.run_staged(stages(1, "k", forward)))
            decoding = threading.Event()
            slow = Stages(
                before=lambda: decoding.wait(10) and ("before", 2),
                batch_key="k",
                forward=forward,
                after=lambda prepared, output: (prepared, output),
            )
            late = asyncio.ensure_future(eng.run_staged(slow))
            other = asyncio.ensure_future(eng.run_staged(stages(3, "other key", forward)))
            await settle()
            hold.set()  # the thread is free: 1 waits, 2 is still decoding
            await settle()
            decoding.set()
            await asyncio.gather(first, fast, late, other)
            assert forward.batches == [[("before", 0)], [("before", 1), ("before", 2)], [("before", 3)]]
        finally:
            eng.shutdown()

    asyncio.run(scenario())


def test_batches_never_mix_keys_and_respect_the_cap() -> None:
    async def scenario() -> None:
        eng = engine(queue_size=20, max_batch=3)
        hold = threading.Event()
        forward = Recorder(hold)
        try:
            first = asyncio.ensure_future(eng.run_staged(stages("x0", "x", forward)))
            await settle()
            items = [("a" if i % 2 else "b") + str(i) for i in range(1, 11)]
            rest = [asyncio.ensure_future(eng.run_staged(stages(i, i[0], forward))) for i in items]
            await settle()
            hold.set()
            results = await asyncio.gather(first, *rest)
            assert [r[1][1][1] for r in results] == ["x0", *items]
            for batch in forward.batches:
                assert len(batch) <= 3
                assert len({item[1][0] for item in batch}) == 1  # one key per batch
            assert sorted(len(b) for b in forward.batches) == [1, 2, 2, 3, 3]
        finally:
            eng.shutdown()

    asyncio.run(scenario())


def test_one_bad_picture_fails_only_its_own_request() -> None:
    async def scenario() -> None:
        eng = engine()
        hold = threading.Event()
        forward = Recorder(hold, fail_on=("before", 3))
        try:
            first = asyncio.ensure_future(eng.run_staged(stages(0, "k", forward)))
            await settle()
            rest = [asyncio.ensure_future(eng.run_staged(stages(i, "k", forward))) for i in range(1, 5)]
            await settle()
            hold.set()
            results = await asyncio.gather(first, *rest, return_exceptions=True)
            assert isinstance(results[3], ValueError)
            assert [r for i, r in enumerate(results) if i != 3] == [
                (("before", i), ("forward", ("before", i))) for i in (0, 1, 2, 4)
            ]
            assert eng.in_flight == 0
        finally:
            eng.shutdown()

    asyncio.run(scenario())


def test_errors_in_cpu_stages_reach_the_caller_and_release_admission() -> None:
    async def scenario() -> None:
        eng = engine(queue_size=0)

        def broken() -> None:
            raise ProblemError(400, "corrupt-image", "no")

        try:
            with pytest.raises(ProblemError):
                await eng.run_staged(Stages(broken, "k", Recorder(), lambda p, o: o))
            assert eng.in_flight == 0
            assert await eng.run_staged(stages(1, "k", Recorder())) is not None  # admitted again
        finally:
            eng.shutdown()

    asyncio.run(scenario())


def test_admission_refuses_at_once_past_capacity_whatever_the_stage() -> None:
    async def scenario() -> None:
        eng = engine(queue_size=2)  # capacity 3
        hold = threading.Event()
        forward = Recorder(hold)
        try:
            admitted = [asyncio.ensure_future(eng.run_staged(stages(i, "k", forward))) for i in range(3)]
            await settle()
            assert eng.in_flight == 3
            started = time.perf_counter()
            with pytest.raises(ProblemError) as refused:
                await eng.run_staged(stages(9, "k", forward))
            assert time.perf_counter() - started < 0.05
            assert refused.value.status == 503
            assert refused.value.headers == {"Retry-After": "1"}
            with pytest.raises(ProblemError):
                await eng.run(lambda: None)  # the explain routes share the same capacity
            hold.set()
            assert len(await asyncio.gather(*admitted)) == 3
            assert eng.in_flight == 0
        finally:
            eng.shutdown()

    asyncio.run(scenario())


def test_pool_map_keeps_order_and_never_deadlocks_from_inside_the_pool() -> None:
    with ThreadPoolExecutor(max_workers=2) as pool:
        assert pool_map(pool, lambda x: x * x, list(range(10))) == [x * x for x in range(10)]
        assert pool_map(pool, lambda x: x, []) == []
        # Every worker inside pool_map at once: the callers finish their own items.
        nested = [pool.submit(pool_map, pool, lambda x: x + 1, list(range(6))) for _ in range(4)]
        assert [f.result(timeout=10) for f in nested] == [list(range(1, 7))] * 4


# ---------------------------------------------------------------- the pipeline's stages


@pytest.fixture(scope="module")
def entries(alexnet_weights: Path) -> dict[str, Any]:
    return load_registry(["tiny", "alexnet"], alexnet_weights)


def pictures(count: int) -> list[bytes]:
    sizes = [(320, 240), (200, 300), (640, 480), (97, 131), (256, 256), (500, 90), (128, 128), (333, 222)]
    return [encode(scene(*sizes[i % len(sizes)], seed=i), "JPEG" if i % 2 else "PNG") for i in range(count)]


@pytest.mark.parametrize("model", ["tiny", "alexnet"])
def test_preprocessing_is_torchvisions_and_keeps_the_picture_it_normalized(
    entries: dict[str, Any], model: str
) -> None:
    entry = entries[model]
    for data in pictures(8):
        image = decode_image(data, MAX_PIXELS)
        tensor, seen = preprocess_image(entry.preprocess, image)
        assert torch.equal(tensor, entry.preprocess(image))  # bit for bit
        assert seen is not None
        denormalized = Image.open(io.BytesIO(denormalized_png(tensor.numpy(), entry.mean, entry.std)))
        assert np.array_equal(np.asarray(denormalized), seen)


def test_other_preprocessing_is_called_as_it_is() -> None:
    image = scene(64, 48)
    tensor, seen = preprocess_image(lambda picture: torch.zeros(3, 8, 8), image)
    assert seen is None and tensor.shape == (3, 8, 8)


@pytest.mark.parametrize("model", ["tiny", "alexnet"])
def test_a_batched_forward_gives_each_picture_its_batch_of_one_answer(entries: dict[str, Any], model: str) -> None:
    entry = entries[model]
    options = Options(entry.default_layers, 5, "json")
    prepared = [prepare(entry, data, MAX_PIXELS) for data in pictures(8)]
    batched = infer(entry, options, prepared)
    assert [b.batch for b in batched] == [8] * 8
    for item, together in zip(prepared, batched, strict=True):
        (alone,) = infer(entry, options, [item])
        for name in entry.default_layers:
            # Convolutions give exactly the batch-of-one maps (AlexNet: bit for bit, measured);
            # matrix products may sum in another order: float rounding, nothing more.
            np.testing.assert_allclose(together.result.maps[name], alone.result.maps[name], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(together.result.logits, alone.result.logits, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(together.result.probabilities, alone.result.probabilities, atol=1e-6)
        assert (together.ood is None) == (alone.ood is None)
        if together.ood is not None and alone.ood is not None:  # rounded to 4 decimals
            assert abs(together.ood["score"] - alone.ood["score"]) <= 2e-4
        assert finish(entry, options, item, together).media_type == "application/json"
    if model == "alexnet":
        for item, together in zip(prepared, batched, strict=True):
            (alone,) = infer(entry, options, [item])
            for name in entry.default_layers:
                assert np.array_equal(together.result.maps[name], alone.result.maps[name]), name


@pytest.mark.parametrize("model", ["tiny", "alexnet"])
def test_layers_encoded_during_the_pass_give_the_same_bytes(entries: dict[str, Any], model: str) -> None:
    entry = entries[model]
    options = Options(entry.default_layers, 5, "json")
    prepared = [prepare(entry, data, MAX_PIXELS) for data in pictures(3)]
    submitted: list[str] = []
    classifier_ran: list[bool] = []
    handle = entry.network.classifier.register_forward_hook(lambda *_: classifier_ran.append(True))
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:

            def submit(job: Callable[[], str]) -> Any:
                # Started while the classifier has not run yet: during the pass, not after it.
                submitted.append("during" if not classifier_ran else "after")
                return pool.submit(job)

            early = infer(entry, options, prepared, submit)
            classifier_ran.clear()
            plain = infer(entry, options, prepared)
            for item, a, b in zip(prepared, early, plain, strict=True):
                assert set(a.encoded) == set(options.layers) and not b.encoded
                assert a.picture is not None and b.picture is None
                got, want = (json.loads(finish(entry, options, item, x).body) for x in (a, b))
                got.pop("timings_ms"), want.pop("timings_ms")  # the only part that may differ
                assert got == want
    finally:
        handle.remove()
    assert submitted == ["during"] * (len(prepared) * (len(options.layers) + 1))  # + the picture
    # npz answers need no JSON: nothing is started for them.
    (npz,) = infer(entry, Options(entry.default_layers, 5, "npz"), prepared[:1], lambda job: pytest.fail("no"))
    assert not npz.encoded


def test_a_model_may_run_its_passes_on_fewer_threads_than_the_setting(entries: dict[str, Any]) -> None:
    tiny = entries["tiny"]
    assert tiny.torch_threads == 1 and entries["alexnet"].torch_threads is None
    assert [pass_threads(tiny, setting) for setting in (1, 2, 8)] == [1, 1, 1]
    assert pass_threads(dataclasses.replace(tiny, torch_threads=4), 2) == 2  # never above the setting
    assert [pass_threads(entries["alexnet"], setting) for setting in (1, 2)] == [1, 2]
    seen: list[tuple[str, int]] = []
    handles = [
        entry.network.features[0].register_forward_hook(
            lambda *_, model=model: seen.append((model, torch.get_num_threads()))
        )
        for model, entry in entries.items()
    ]
    try:
        with intra_op_threads(2):
            for model in ("tiny", "alexnet"):
                entry = entries[model]
                prepared = [prepare(entry, data, MAX_PIXELS) for data in pictures(2)]
                options = Options(entry.default_layers, 5, "json")
                infer(entry, options, prepared[:1])
                infer(entry, options, prepared)
                assert torch.get_num_threads() == 2  # restored after each pass
    finally:
        for handle in handles:
            handle.remove()
    assert seen == [("tiny", 1)] * 2 + [("alexnet", 2)] * 2


@pytest.mark.parametrize("cores", [1, 8])
def test_each_layer_is_encoded_as_it_comes_when_the_pass_leaves_a_core_free(
    entries: dict[str, Any], cores: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    entry = entries["tiny"]  # its passes run on one thread
    monkeypatch.setattr(pipeline, "available_cores", lambda: cores)
    options = Options(entry.default_layers, 5, "json")
    (prepared,) = [prepare(entry, data, MAX_PIXELS) for data in pictures(1)]
    modules = dict(entry.network.named_modules())
    started: list[str] = []  # layers whose module has started, in order
    handles = [modules[name].register_forward_pre_hook(lambda *_, name=name: started.append(name))
               for name in entry.default_layers]
    submitted: list[int] = []  # for each job, the requested layers started by then
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:

            def submit(job: Callable[[], str]) -> Any:
                submitted.append(len(started))
                return pool.submit(job)

            (inferred,) = infer(entry, options, [prepared], submit)
            with intra_op_threads(1):  # the same pass, encoded afterwards: the same answer
                (plain,) = infer(entry, options, [prepared])
    finally:
        for handle in handles:
            handle.remove()
    layers = len(entry.default_layers)
    if cores > 1:  # the picture's PNG before the pass; conv1's job before conv2 starts, and so on
        assert submitted == list(range(layers + 1))
    else:  # the picture's and every layer's job once the last requested layer has its map
        assert submitted == [layers] * (layers + 1)
    got, want = (json.loads(finish(entry, options, prepared, x).body) for x in (inferred, plain))
    got.pop("timings_ms"), want.pop("timings_ms")
    assert got == want


def test_an_early_encoding_not_yet_started_runs_on_the_caller() -> None:
    from app.pipeline import Early

    gate = threading.Event()
    with ThreadPoolExecutor(max_workers=1) as pool:
        blocker = pool.submit(gate.wait)  # the only worker is busy: the job below stays queued
        job = lambda: "done"  # noqa: E731
        early = Early(pool.submit(job), job)
        assert early.result() == "done" and early.future.cancelled()  # no wait on the busy pool
        gate.set()
        blocker.result()


def test_mixed_input_sizes_fall_back_to_one_forward_pass_each(entries: dict[str, Any]) -> None:
    entry = entries["tiny"]
    options = Options(entry.default_layers, 5, "npz")
    prepared = [prepare(entry, data, MAX_PIXELS) for data in pictures(2)]
    prepared[1].tensor = prepared[1].tensor[:, :112, :112]  # as if preprocessing gave another size
    results = infer(entry, options, prepared)
    assert [r.batch for r in results] == [2, 2]
    (alone,) = infer(entry, options, [prepared[0]])
    assert np.array_equal(results[0].result.maps["features.1"], alone.result.maps["features.1"])
    assert results[1].result.maps["features.1"].shape != alone.result.maps["features.1"].shape


# ---------------------------------------------------------------- over HTTP


@pytest.mark.parametrize("max_batch", [8, 1])
def test_concurrent_requests_are_batched_and_each_gets_its_own_picture_s_answer(
    monkeypatch: pytest.MonkeyPatch, max_batch: int
) -> None:
    """LAYERSCOPE_MAX_BATCH (Settings.max_batch) reaches the engine: 1 turns batching off."""
    import app.services.activations as activations

    slow = threading.Event()
    real_infer = activations.infer

    def slowed(entry: Any, options: Options, batch: list[Any], submit: Any = None) -> list[Any]:
        if not slow.is_set():  # the first forward pass waits, so the others queue behind it
            slow.set()
            time.sleep(0.5)
        return real_infer(entry, options, batch, submit)

    data = pictures(6)
    # Six requests from one test client at once: more than one client's in-flight cap.
    settings = make_settings(cache_entries=0, max_batch=max_batch, client_inflight=0)
    with TestClient(create_app(settings)) as client:
        png = {"content-type": "image/png"}
        expected = [client.post(ACTIVATIONS, content=d, headers=png).json() for d in data]
        monkeypatch.setattr(activations, "infer", slowed)
        results: dict[int, dict[str, Any]] = {}

        def post(i: int) -> None:
            results[i] = client.post(ACTIVATIONS, content=data[i], headers=png).json()

        threads = [threading.Thread(target=post, args=(i,)) for i in range(len(data))]
        for thread in threads:
            thread.start()
            time.sleep(0.02)
        for thread in threads:
            thread.join(30)
        batches = client.app.state.engine.batches  # type: ignore[attr-defined]
    if max_batch > 1:
        assert max(batches) > 1, batches  # some pictures shared a forward pass
    else:
        assert set(batches) == {1}, batches
    for i, body in results.items():
        assert body["input"] == expected[i]["input"]
        assert [p["index"] for p in body["predictions"]] == [p["index"] for p in expected[i]["predictions"]]
        for got, want in zip(body["layers"], expected[i]["layers"], strict=True):
            assert got["shape"] == want["shape"]
            np.testing.assert_allclose(got["lo"], want["lo"], atol=1e-5)
            np.testing.assert_allclose(got["hi"], want["hi"], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("layers", [None, ("features.4",)])
def test_the_unfamiliarity_score_reuses_the_pass_and_equals_a_second_pass(
    entries: dict[str, Any], layers: tuple[str, ...] | None
) -> None:
    entry = entries["tiny"]
    chosen = layers or entry.default_layers
    for data in pictures(3):
        prepared = prepare(entry, data, MAX_PIXELS)
        options = Options(chosen, 5, "json")
        (inferred,) = infer(entry, options, [prepared])
        body = json.loads(finish(entry, options, prepared, inferred).body)
        assert body["ood"] == unfamiliarity(entry, prepared.tensor)  # the score's own forward pass
        assert [layer["name"] for layer in body["layers"]] == list(chosen)
        npz = Options(chosen, 5, "npz")
        (inferred,) = infer(entry, npz, [prepared])
        arrays = np.load(io.BytesIO(finish(entry, npz, prepared, inferred).body))
        assert set(arrays.files) == {*chosen, "logits", "probabilities"}
