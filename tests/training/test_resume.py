"""Resumable training: an interrupted run, resumed, ends with exactly the weights of an uninterrupted one."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

import fortify as ft
from fortify.data import make_synthetic
from fortify.training.checkpoint import checkpoint_path, load_state
from fortify.training.resume import TrainingInterrupted
from fortify.types import FortifyError


def _model() -> ft.Classifier:
    torch.manual_seed(0)
    module = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Dropout(0.1), nn.Linear(4 * 64, 4)
    )
    return ft.Classifier(module, num_classes=4)


def _data() -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    x, y = make_synthetic(192, seed=3)
    return x[:160], y[:160], (x[160:], y[160:])


SETTINGS = dict(
    epochs=3, batch_size=32, lr=3e-3, lr_schedule="cosine", seed=5, threat=ft.Linf(0.1), val_steps=2
)


def _signal_at(step: int, signum: int):
    """A progress reporter that sends ``signum`` to this process when training reaches ``step``."""

    @contextlib.contextmanager
    def progress(_description: str, _total: float) -> Iterator[object]:
        class Ticker:
            done = 0.0

            def advance(self, amount: float = 1, **_fields: str) -> None:
                self.done += amount
                if self.done == step:
                    os.kill(os.getpid(), signum)

        yield Ticker()

    return progress


def _weights(clf: ft.Classifier) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in clf.module.state_dict().items()}


@pytest.mark.parametrize(
    ("method", "stop_at", "signum"),
    [("fast", 7, signal.SIGTERM), ("fast", 10, signal.SIGINT), ("pgd", 3, signal.SIGTERM)],
)
def test_interrupted_and_resumed_run_has_the_weights_of_an_uninterrupted_one(
    tmp_path: Path, method: str, stop_at: int, signum: int
) -> None:
    # 5 steps per epoch: step 7 is mid-epoch 2, step 10 the end of epoch 2 (an epoch-boundary save)
    x, y, val = _data()
    options = dict(SETTINGS, method=method, co_check_every=2 if method == "fast" else 0)
    whole = _model()
    ft.train(whole, (x, y), val=val, **options)

    parted = _model()
    with pytest.raises(TrainingInterrupted, match="checkpoint in"):
        stop = _signal_at(stop_at, signum)
        ft.train(parted, (x, y), val=val, checkpoint=tmp_path, progress=stop, **options)
    state = load_state(tmp_path)
    assert (state.info["epoch"], state.info["step"]) == divmod(stop_at, 5)
    resumed = _model()  # a fresh process would build the model anew: its initial weights are overwritten
    with torch.no_grad():
        for p in resumed.module.parameters():
            p.add_(1.0)
    history = ft.train(resumed, (x, y), val=val, checkpoint=tmp_path, resume=True, **options)

    assert [e.epoch for e in history.epochs] == [1, 2, 3]
    for name, tensor in _weights(whole).items():
        assert torch.equal(tensor, resumed.module.state_dict()[name]), name
    assert load_state(tmp_path).info["finished"] is True


def test_the_signal_handlers_are_put_back(tmp_path: Path) -> None:
    x, y, _ = _data()
    before = signal.getsignal(signal.SIGTERM)
    ft.train(_model(), (x, y), epochs=1, batch_size=64, checkpoint=tmp_path)
    assert signal.getsignal(signal.SIGTERM) is before


def test_resume_refuses_other_settings_other_data_and_no_checkpoint(tmp_path: Path) -> None:
    x, y, _ = _data()
    with pytest.raises(FortifyError, match="no training checkpoint"):
        ft.train(_model(), (x, y), epochs=2, checkpoint=tmp_path, resume=True)
    ft.train(_model(), (x, y), epochs=2, batch_size=64, checkpoint=tmp_path)
    with pytest.raises(FortifyError, match="other settings: lr differ"):
        ft.train(_model(), (x, y), epochs=2, batch_size=64, lr=0.1, checkpoint=tmp_path, resume=True)
    with pytest.raises(FortifyError, match="other training data"):
        ft.train(_model(), (x.flip(0), y.flip(0)), epochs=2, batch_size=64, checkpoint=tmp_path, resume=True)
    with pytest.raises(FortifyError, match="needs checkpoint=FOLDER"):
        ft.train(_model(), (x, y), epochs=2, resume=True)


def test_resuming_a_finished_run_changes_nothing(tmp_path: Path) -> None:
    x, y, _ = _data()
    first = _model()
    ft.train(first, (x, y), epochs=2, batch_size=64, checkpoint=tmp_path)
    again = _model()
    history = ft.train(again, (x, y), epochs=2, batch_size=64, checkpoint=tmp_path, resume=True)
    assert len(history.epochs) == 2
    for name, tensor in first.module.state_dict().items():
        assert torch.equal(tensor, again.module.state_dict()[name])


def test_a_damaged_or_foreign_checkpoint_is_refused_in_one_line(tmp_path: Path) -> None:
    x, y, _ = _data()
    checkpoint_path(tmp_path).write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}garbage")
    with pytest.raises(FortifyError) as caught:
        ft.train(_model(), (x, y), epochs=1, checkpoint=tmp_path, resume=True)
    assert "\n" not in str(caught.value)
    save_file({"w": torch.zeros(2)}, str(checkpoint_path(tmp_path)), metadata={"other": "{}"})
    with pytest.raises(FortifyError, match="not a fortify training checkpoint"):
        ft.train(_model(), (x, y), epochs=1, checkpoint=tmp_path, resume=True)


def test_dp_runs_refuse_checkpoints(tmp_path: Path) -> None:
    pytest.importorskip("opacus")
    x, y, _ = _data()
    with pytest.raises(FortifyError, match="DP runs"):
        ft.train(_model(), (x, y), method="dp", epsilon=3.0, checkpoint=tmp_path)
