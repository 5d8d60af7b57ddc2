"""Streamed evaluation: a DataLoader (or any iterable of batches) is evaluated chunk by chunk and the
chunks' Results merged into the Result the in-memory evaluation gives on the same data and seed."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import fortify as ft
from fortify.evaluation import SuiteEntry
from fortify.evaluation import stream as streaming
from fortify.evaluation.merge import Merger
from fortify.evaluation.stream import evaluate_batches, sweep_batches
from fortify.result import AttackRecord, Result, SampleRecord
from fortify.types import FortifyError

DETERMINISTIC = [
    SuiteEntry("fgsm", ft.attacks.FGSM(), ran_on="all"),
    SuiteEntry("pgd", ft.attacks.PGD(steps=5, random_start=False)),
]
"""Attacks whose outcome for a sample does not depend on the other samples of its batch."""


@pytest.fixture(scope="module")
def data(tiny_cnn):
    """150 test samples in a shuffled order (so that every chunk mixes classes), some breakable."""
    clf, x, y = tiny_cnn
    order = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(1))[:150]
    return clf, x[order], y[order]


def _outcomes(result: Result) -> list[tuple]:
    return [
        (s.index, s.label, s.clean_pred, s.clean_correct, s.robust, s.broken_by, s.adv_pred)
        for s in result.samples
    ]


def test_a_streamed_evaluation_gives_the_in_memory_per_sample_outcomes(data):
    clf, x, y = data
    threat = ft.Linf(0.15)
    groups = ["a" if i % 3 else "b" for i in range(x.shape[0])]
    names = ["zero", "one", "two", "three"]
    whole = ft.evaluate(clf, x, y, threat, DETERMINISTIC, batch_size=16, groups=groups, class_names=names)
    loader = DataLoader(TensorDataset(x, y), batch_size=10)  # chunks of 64 cut batches in the middle
    streamed = evaluate_batches(
        clf, loader, threat, DETERMINISTIC, chunk_size=64, batch_size=16, groups=groups, class_names=names
    )
    assert 0 < whole.robust_accuracy < whole.clean_accuracy, "the eps must break some, not all"
    assert _outcomes(streamed) == _outcomes(whole)
    assert [s.index for s in streamed.samples] == list(range(150))
    for a, b in zip(whole.samples, streamed.samples, strict=True):
        assert (a.perturbation_norm is None) == (b.perturbation_norm is None)
        if a.perturbation_norm is not None:
            assert b.perturbation_norm == pytest.approx(a.perturbation_norm, abs=1e-5)
    for field in ("clean_accuracy", "robust_accuracy", "attack_success_rate"):
        assert getattr(streamed, field) == pytest.approx(getattr(whole, field), abs=1e-6)
    for a, b in zip(whole.per_attack, streamed.per_attack, strict=True):
        assert (a.name, a.n_attacked, a.n_succeeded) == (b.name, b.n_attacked, b.n_succeeded)
        assert b.accuracy == pytest.approx(a.accuracy, abs=1e-6)
        assert b.cumulative_accuracy == pytest.approx(a.cumulative_accuracy, abs=1e-6)
        assert b.forward_passes == pytest.approx(a.forward_passes)
    assert [(s.kind, s.key, s.n) for s in streamed.slices] == [(s.kind, s.key, s.n) for s in whole.slices]
    for a, b in zip(whole.slices, streamed.slices, strict=True):
        assert b.robust_accuracy == pytest.approx(a.robust_accuracy, abs=1e-6)
    assert streamed.calibration.clean_histogram == whole.calibration.clean_histogram
    assert streamed.calibration.adversarial_histogram == whole.calibration.adversarial_histogram
    assert streamed.calibration.ece_adversarial == pytest.approx(whole.calibration.ece_adversarial, abs=1e-5)
    assert streamed.sections["streaming"]["chunks"] == 3
    assert {e.index for e in streamed.gallery} <= {s.index for s in streamed.samples if s.broken_by}


def test_ft_evaluate_streams_a_dataloader_with_a_named_suite(data):
    clf, x, y = data
    loader = DataLoader(TensorDataset(x[:40], y[:40]), batch_size=7)
    result = ft.evaluate(clf, loader, None, ft.Linf(0.15), suite="quick", seed=2)
    assert result.n_samples == 40 and [s.index for s in result.samples] == list(range(40))
    assert result.suite == "quick" and result.smoke_test
    assert {r.name for r in result.per_attack} == {"fgsm", "pgd"}
    assert Result.from_json(result.to_json()).n_samples == 40  # it passes the evidence checks


def test_the_data_is_read_one_chunk_at_a_time(data, monkeypatch):
    clf, x, y = data
    pulled = []

    def batches():
        for start in range(0, 100, 10):
            pulled.append(start + 10)
            yield x[start : start + 10], y[start : start + 10]

    seen = []
    real = streaming.evaluate

    def spy(clf, xs, *args, **kwargs):
        seen.append((xs.shape[0], pulled[-1]))
        return real(clf, xs, *args, **kwargs)

    monkeypatch.setattr(streaming, "evaluate", spy)
    result = evaluate_batches(clf, batches(), ft.Linf(0.1), DETERMINISTIC, chunk_size=30)
    assert result.n_samples == 100
    assert seen == [(30, 30), (30, 60), (30, 90), (10, 100)]  # never more read than one chunk ahead


def test_a_streamed_sweep_adds_up_the_chunks_curves(data):
    clf, x, y = data
    loader = DataLoader(TensorDataset(x[:48], y[:48]), batch_size=16)
    fmn = ft.attacks.FMN(steps=10)
    whole = ft.sweep(clf, x[:48], y[:48], ft.Linf, [0.05, 0.15, 0.3], refine=False, min_norm=fmn)
    streamed = sweep_batches(
        clf, loader, ft.Linf, [0.05, 0.15, 0.3], refine=False, min_norm=fmn, chunk_size=16
    )
    assert streamed.n_samples == 48 and streamed.sweep.epsilons == [0.05, 0.15, 0.3]
    assert streamed.sweep.robust_accuracy == pytest.approx(whole.sweep.robust_accuracy, abs=1e-6)
    assert streamed.sweep.robust_accuracy == sorted(streamed.sweep.robust_accuracy, reverse=True)
    assert streamed.sections["streaming"]["suite_chosen_on"] == "each chunk"


@pytest.mark.parametrize(
    ("data", "y", "message"),
    [
        ([], None, "no samples"),
        (
            [(torch.rand(2, 1, 8, 8), torch.zeros(2, dtype=torch.long)), (torch.rand(2, 8), torch.zeros(2))],
            None,
            "batch 1",
        ),
        ([torch.rand(2, 1, 8, 8)], None, "batch 0 is a Tensor"),
        ([(torch.rand(2, 1, 8, 8), torch.zeros(2, dtype=torch.long))], torch.zeros(2), "pass y=None"),
    ],
)
def test_bad_streams_are_one_line_errors(tiny_cnn, data, y, message):
    clf, _, _ = tiny_cnn
    with pytest.raises(FortifyError, match=message):
        ft.evaluate(clf, data, y, ft.Linf(0.1))


def test_a_guard_is_not_streamed(tiny_cnn):
    clf, x, y = tiny_cnn

    class Provides:
        def as_classifier(self):
            return clf

        def annotate_result(self, result, x, y):
            return result

    with pytest.raises(FortifyError, match="in memory"):
        evaluate_batches(Provides(), [(x[:4], y[:4])], ft.Linf(0.1))


def _part(n: int, records: list[tuple[str, int, int, float]], robust: list[bool]) -> Result:
    samples = [
        SampleRecord(index=i, label=0, clean_pred=0, clean_correct=True, robust=r, clean_confidence=0.9)
        for i, r in enumerate(robust)
    ]
    per_attack = [
        AttackRecord(
            name=name,
            ran_on="remaining",
            n_attacked=a,
            n_succeeded=s,
            accuracy=None,
            cumulative_accuracy=cum,
            time_s=1.0,
            forward_passes=2.0,
        )
        for name, a, s, cum in records
    ]
    return Result(n_samples=n, samples=samples, per_attack=per_attack, timing={"total_s": 1.0})


def test_an_escalation_only_some_chunks_ran_keeps_its_place_and_the_others_counts():
    merger = Merger()
    merger.add(0, _part(2, [("a", 2, 1, 0.5), ("c", 1, 0, 0.5)], [True, False]))
    merger.add(2, _part(2, [("a", 2, 0, 1.0), ("escalated", 2, 1, 0.5), ("c", 1, 1, 0.0)], [False, False]))
    result = merger.result()
    assert [r.name for r in result.per_attack] == ["a", "escalated", "c"]
    # robust counts after each attack: chunk 1 stands at 1 after "a" (it never ran "escalated")
    assert [r.cumulative_accuracy for r in result.per_attack] == [0.75, 0.5, 0.25]
    assert [r.n_attacked for r in result.per_attack] == [4, 2, 2]
    assert result.robust_accuracy == 0.25 and [s.index for s in result.samples] == [0, 1, 2, 3]
    assert result.timing["total_s"] == 2.0


def test_ft_sweep_streams_a_dataloader(data):
    clf, x, y = data
    loader = DataLoader(TensorDataset(x[:20], y[:20]), batch_size=8)
    result = ft.sweep(clf, loader, None, ft.Linf, [0.1, 0.2], refine=False, min_norm=ft.attacks.FMN(steps=5))
    assert result.n_samples == 20 and len(result.sweep.robust_accuracy) == 2
