"""Standard training: learns, is deterministic under a seed, records history, validates input."""

from __future__ import annotations

import pytest
import torch

import fortify as ft
from tests.conftest import fresh_cnn_tiny


def test_training_learns_and_records_history():
    x, y = ft.data.load("synthetic", "train")
    xv, yv = ft.data.load("synthetic", "test")
    clf = fresh_cnn_tiny()
    history = ft.train(clf, (x, y), epochs=3, lr=3e-3, batch_size=64, val=(xv, yv), progress=False)
    assert [e.epoch for e in history.epochs] == [1, 2, 3]
    assert history.epochs[-1].loss < history.epochs[0].loss
    assert history.epochs[-1].val_accuracy > 0.9
    assert not clf.module.training


def test_training_is_deterministic_under_a_seed():
    x, y = ft.data.load("synthetic", "train")
    a, b = fresh_cnn_tiny(), fresh_cnn_tiny()
    ft.train(a, (x, y), epochs=1, batch_size=32, seed=5, progress=False)
    ft.train(b, (x, y), epochs=1, batch_size=32, seed=5, progress=False)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)


def test_a_plain_module_is_accepted():
    x, y = ft.data.load("breast-cancer", "train")
    torch.manual_seed(0)
    module = ft.zoo.create("mlp", (30,), 2)
    history = ft.train(module, (x, y), epochs=5, batch_size=64, lr=3e-3, progress=False)
    assert history.epochs[-1].accuracy > 0.9


@pytest.mark.parametrize(
    "kwargs",
    [{"epochs": 0}, {"batch_size": 0}, {"lr": 0.0}, {"method": "magic"}, {"method": "standard", "beta": 1}],
)
def test_bad_arguments_are_rejected(kwargs):
    x, y = ft.data.load("synthetic", "train")
    with pytest.raises(ValueError):
        ft.train(fresh_cnn_tiny(), (x, y), progress=False, **kwargs)


def test_out_of_range_inputs_are_rejected():
    x, y = ft.data.load("synthetic", "train")
    with pytest.raises(ValueError, match="bounds"):
        ft.train(fresh_cnn_tiny(), (x * 255, y), progress=False)


def test_training_from_a_dataloader_learns_and_reads_it_every_epoch():
    from torch.utils.data import DataLoader, TensorDataset

    x, y = ft.data.load("synthetic", "train")
    reads = []

    class Counting(DataLoader):
        def __iter__(self):
            reads.append(1)
            return super().__iter__()

    loader = Counting(
        TensorDataset(x, y), batch_size=64, shuffle=True, generator=torch.Generator().manual_seed(0)
    )
    clf = fresh_cnn_tiny()
    history = ft.train(clf, loader, epochs=3, lr=3e-3, progress=False)
    assert history.epochs[-1].loss < history.epochs[0].loss and history.epochs[-1].accuracy > 0.9
    assert history.config["batch_size"] == 64  # the loader's, not the config's default
    assert len(reads) == 1 + 3  # the first samples once (training accuracy), then every epoch


def test_a_list_of_batches_trains_like_the_tensors_in_that_order():
    x, y = ft.data.load("synthetic", "train")
    model = ft.zoo.create("mlp", (1, 8, 8), 4)
    batches = [(x[k : k + 64], y[k : k + 64]) for k in range(0, 256, 64)]
    history = ft.train(model, batches, epochs=1, num_classes=4, progress=False)
    assert len(history.epochs) == 1 and history.epochs[0].loss > 0


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (iter([]), "not an iterator or generator"),
        ((pair for pair in []), "not an iterator or generator"),
        ([], "no batches"),
    ],
)
def test_training_data_that_cannot_be_read_every_epoch_is_refused(data, message):
    with pytest.raises(ft.FortifyError, match=message):
        ft.train(fresh_cnn_tiny(), data, epochs=1)


def test_a_dataloader_batch_outside_the_bounds_is_refused():
    bad = [(torch.full((4, 1, 8, 8), 2.0), torch.zeros(4, dtype=torch.long))]
    with pytest.raises(ft.FortifyError, match="bounds"):
        ft.train(fresh_cnn_tiny(), bad, epochs=1)
