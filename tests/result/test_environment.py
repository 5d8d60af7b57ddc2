"""Every Result records where it ran: device and torch's CPU thread count (figures depend on both)."""

from __future__ import annotations

import torch

import fortify as ft
from fortify.result import Environment


def test_capture_records_threads_and_device():
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        env = Environment.capture("cpu")
    finally:
        torch.set_num_threads(before)
    assert (env.threads, env.device) == (1, "cpu")


def test_an_evaluation_result_carries_them_through_json(tiny_cnn):
    clf, x, y = tiny_cnn
    result = ft.evaluate(clf, x[:8], y[:8], ft.Linf(0.05), suite="quick")
    again = ft.Result.from_json(result.to_json())
    assert again.environment.threads == torch.get_num_threads() and again.environment.device == "cpu"


def test_results_written_before_threads_were_recorded_still_read(tiny_cnn):
    clf, x, y = tiny_cnn
    document = ft.evaluate(clf, x[:4], y[:4], ft.Linf(0.05), suite="quick").model_dump(mode="json")
    del document["environment"]["threads"]
    assert ft.Result.model_validate(document).environment.threads is None
