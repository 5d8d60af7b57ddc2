"""The batched runner takes tensors or an iterable of (x, y) batches (a DataLoader): the same points."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import fortify as ft
from fortify.attacks.runner import accuracy, run_batched, stream
from fortify.types import FortifyError


def test_a_dataloader_gives_the_points_tensors_give(tiny_cnn):
    clf, x, y = tiny_cnn
    loader = DataLoader(TensorDataset(x[:50], y[:50]), batch_size=12)
    fgsm = ft.attacks.FGSM()
    from_loader = run_batched(fgsm, clf, loader, None, ft.Linf(0.1), batch_size=5)
    from_tensors = run_batched(fgsm, clf, x[:50], y[:50], ft.Linf(0.1), batch_size=5)
    assert torch.allclose(from_loader.x_adv, from_tensors.x_adv, atol=1e-6)
    assert torch.equal(from_loader.queries, from_tensors.queries)
    assert accuracy(clf, loader, None) == pytest.approx(accuracy(clf, x[:50], y[:50]))


def test_stream_keeps_nothing_and_says_where_each_piece_starts(tiny_cnn):
    clf, x, y = tiny_cnn
    batches = ((x[k : k + 7], y[k : k + 7]) for k in range(0, 20, 7))  # a generator, read once
    pieces = list(stream(ft.attacks.FGSM(), clf, batches, ft.Linf(0.1), batch_size=4))
    assert [(p.start, p.x.shape[0]) for p in pieces] == [(0, 4), (4, 3), (7, 4), (11, 3), (14, 4), (18, 3)]
    assert all(torch.equal(p.y, y[p.start : p.start + p.x.shape[0]]) for p in pieces)


def test_labels_go_with_the_batches(tiny_cnn):
    clf, x, y = tiny_cnn
    with pytest.raises(FortifyError, match="y=None"):
        run_batched(ft.attacks.FGSM(), clf, [(x[:2], y[:2])], y[:2], ft.Linf(0.1), batch_size=2)
    with pytest.raises(FortifyError, match="give the labels"):
        run_batched(ft.attacks.FGSM(), clf, x[:2], None, ft.Linf(0.1), batch_size=2)
