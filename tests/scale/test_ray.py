"""The Ray executor: evaluation, sweeps and certification sharded over a real local Ray (2 CPUs) give
the Result the same shards give in one process, record for record; a worker that dies is replaced
without losing or double-counting a sample; bad addresses and unreadable models fail in one line."""

from __future__ import annotations

import functools
import socket
import time

import pytest
import torch

import fortify as ft
from fortify.evaluation import SuiteEntry
from fortify.result import Result
from fortify.types import FortifyError, split_shards
from tests.scale.models import DiesOnce

DETERMINISTIC = [
    SuiteEntry("fgsm", ft.attacks.FGSM(), ran_on="all"),
    SuiteEntry("pgd", ft.attacks.PGD(steps=5, random_start=False)),
]
"""Attacks whose outcome for a sample does not depend on the other samples of its batch."""


@pytest.fixture(scope="module")
def data(tiny_cnn):
    """90 shuffled test samples of the tiny CNN, some of which Linf 0.15 breaks."""
    clf, x, y = tiny_cnn
    order = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(3))[:90]
    return clf, x[order], y[order]


def _records(result: Result) -> list[dict]:
    return [s.model_dump() for s in result.samples]


def _attacks(result: Result) -> list[tuple]:
    return [
        (a.name, a.n_attacked, a.n_succeeded, a.accuracy, a.cumulative_accuracy, a.forward_passes)
        for a in result.per_attack
    ]


def test_shards_cover_every_sample_once_on_aligned_boundaries():
    for n, k, align in [(90, 3, 16), (10, 4, 1), (3, 8, 2), (1000, 7, 250)]:
        shards = split_shards(n, k, align)
        assert [i for a, b in shards for i in range(a, b)] == list(range(n))
        assert len(shards) <= k and all(a % align == 0 for a, _ in shards)
    with pytest.raises(FortifyError):
        split_shards(10, 0)


def test_ray_evaluation_gives_every_per_sample_record_the_same_shards_give_in_one_process(local_ray, data):
    clf, x, y = data
    threat = ft.Linf(0.15)
    here = ft.evaluate(clf, x, y, threat, "quick", batch_size=16, executor=ft.scale.InProcess(shards=3))
    there = ft.evaluate(clf, x, y, threat, "quick", batch_size=16, executor=ft.scale.Ray(shards=3))
    assert 0 < there.robust_accuracy < there.clean_accuracy, "the eps must break some samples, not all"
    assert _records(there) == _records(here)
    assert [s.index for s in there.samples] == list(range(90))
    assert _attacks(there) == _attacks(here)
    assert [(d.name, d.passed) for d in there.diagnostics] == [(d.name, d.passed) for d in here.diagnostics]
    scale = there.sections["scale"]
    assert scale["executor"] == "ray" and scale["workers"] == 2 and scale["retries"] == []
    assert scale["shards"] == [[0, 32], [32, 64], [64, 90]] == here.sections["scale"]["shards"]
    assert ft.Result.from_json(there.to_json()).sections["scale"] == scale


def test_ray_evaluation_of_deterministic_attacks_equals_the_unsharded_evaluation(local_ray, data):
    clf, x, y = data
    whole = ft.evaluate(clf, x, y, ft.Linf(0.15), DETERMINISTIC, batch_size=16)
    sharded = ft.evaluate(clf, x, y, ft.Linf(0.15), DETERMINISTIC, batch_size=16, executor=ft.scale.Ray())
    assert len(sharded.sections["scale"]["shards"]) == 2  # one per CPU of the local Ray
    outcome = ("index", "label", "clean_pred", "clean_correct", "robust", "broken_by", "adv_pred")
    for a, b in zip(whole.samples, sharded.samples, strict=True):
        assert [getattr(a, f) for f in outcome] == [getattr(b, f) for f in outcome]
        assert (a.perturbation_norm is None) == (b.perturbation_norm is None)
        if a.perturbation_norm is not None:
            assert b.perturbation_norm == pytest.approx(a.perturbation_norm, abs=1e-5)
    assert sharded.robust_accuracy == pytest.approx(whole.robust_accuracy, abs=1e-6)
    assert [(a.name, a.n_attacked, a.n_succeeded) for a in sharded.per_attack] == [
        (a.name, a.n_attacked, a.n_succeeded) for a in whole.per_attack
    ]


def test_a_worker_killed_mid_job_is_replaced_and_no_sample_is_lost_or_counted_twice(
    local_ray, data, tmp_path
):
    clf, x, y = data
    marker = tmp_path / "died"
    dying = ft.Classifier(DiesOnce(clf, marker), num_classes=clf.num_classes, bounds=clf.bounds)
    here = ft.evaluate(
        dying, x, y, ft.Linf(0.15), DETERMINISTIC, batch_size=16, executor=ft.scale.InProcess(3)
    )
    there = ft.evaluate(
        dying, x, y, ft.Linf(0.15), DETERMINISTIC, batch_size=16, executor=ft.scale.Ray(shards=3)
    )
    assert marker.exists(), "no worker died: the test did not test anything"
    assert len(there.sections["scale"]["retries"]) == 1
    assert there.n_samples == 90 and [s.index for s in there.samples] == list(range(90))
    assert _records(there) == _records(here)
    assert _attacks(there) == _attacks(here)


def test_ray_sweep_gives_the_curve_and_records_the_same_shards_give_in_one_process(local_ray, data):
    clf, x, y = data
    options = {"suite": DETERMINISTIC, "batch_size": 16, "min_norm": ft.attacks.FMN(steps=10)}
    here = ft.sweep(clf, x, y, ft.Linf, [0.05, 0.15], executor=ft.scale.InProcess(shards=2), **options)
    ray = ft.scale.Ray(shards=2, workers=1)  # one actor runs both shards in turn
    there = ft.sweep(clf, x, y, ft.Linf, [0.05, 0.15], executor=ray, **options)
    assert there.sweep is not None and here.sweep is not None
    assert there.sweep.robust_accuracy == here.sweep.robust_accuracy
    assert _records(there) == _records(here)


def test_ray_certification_gives_the_certificates_of_the_unsharded_run(local_ray, data):
    clf, x, y = data
    smooth = ft.certify.Smooth(clf, sigma=0.25, batch_size=200)
    whole = ft.certify.certified_accuracy(smooth, x[:40], y[:40], n0=10, n=90, alpha=0.01)
    sharded = ft.certify.certified_accuracy(
        smooth, x[:40], y[:40], n0=10, n=90, alpha=0.01, executor=ft.scale.Ray(shards=2, workers=1)
    )
    assert sharded.sections["certification"]["samples"] == whole.sections["certification"]["samples"]
    assert (
        sharded.sections["certification"]["certified_accuracy"]
        == whole.sections["certification"]["certified_accuracy"]
    )
    assert sharded.sections["scale"]["executor"] == "ray" and len(sharded.sections["scale"]["shards"]) == 2


def test_workers_that_cannot_read_the_model_file_fail_in_one_line(local_ray, data, tmp_path):
    clf, x, y = data
    loader = functools.partial(ft.zoo.load, tmp_path / "not-there.safetensors")
    executor = ft.scale.Ray(shards=2, workers=1, model_loader=loader)
    started = time.perf_counter()
    with pytest.raises(FortifyError, match="could not load the model") as caught:
        ft.evaluate(clf, x, y, ft.Linf(0.1), DETERMINISTIC, executor=executor)
    assert "\n" not in str(caught.value) and "not-there" in str(caught.value)
    assert time.perf_counter() - started < 60


def test_an_address_nobody_answers_on_is_a_one_line_error_at_once(data):
    from tests.scale.conftest import ray_or_skip

    ray_or_skip()
    clf, x, y = data
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens on it
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    for address in (f"127.0.0.1:{port}", f"ray://127.0.0.1:{port}"):
        started = time.perf_counter()
        with pytest.raises(FortifyError, match="cannot reach the Ray cluster") as caught:
            ft.evaluate(clf, x, y, ft.Linf(0.1), DETERMINISTIC, executor=ft.scale.Ray(address))
        assert "\n" not in str(caught.value)
        assert time.perf_counter() - started < 15
    with pytest.raises(FortifyError, match="HOST:PORT"):
        ft.evaluate(clf, x, y, ft.Linf(0.1), DETERMINISTIC, executor=ft.scale.Ray("no-port-here"))
