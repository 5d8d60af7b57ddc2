"""The monitor: rules over rolling windows fire on attacks, drift and extraction, not on clean traffic."""

from __future__ import annotations

import pytest
import torch

import fortify as ft
from fortify.runtime import AlertRule, Monitor, parse_rules
from fortify.runtime.extraction import Prada

from .conftest import calibration_set

ATTACK_RULE = AlertRule(name="attack", metric="review_rate", window=50, threshold=0.3, min_count=20)


def _stream(monitor, guard, x, *, start, client=None, step=0.01):
    """Feed ``x`` one input per request, ``step`` seconds apart; returns (index, alert) of the first."""
    for i in range(x.shape[0]):
        fired = monitor.observe(guard(x[i : i + 1]), x[i : i + 1], client=client, now=start + i * step)
        if fired:
            return i, fired[0]
    return None, None


def test_clean_traffic_raises_no_attack_alert_and_adversarial_traffic_does(guard, tiny_cnn):
    clf, x, y = tiny_cnn
    monitor = Monitor(rules=[ATTACK_RULE])
    x_clean, _ = calibration_set(1000, seed=5)
    index, _ = _stream(monitor, guard, x_clean, start=0.0)
    assert index is None, "no false alarm on 1,000 clean requests"
    x_adv = ft.attacks.FGSM()(clf, x[:100], y[:100], ft.Linf(0.3))
    index, alert = _stream(monitor, guard, x_adv, start=100.0)
    assert index is not None and index < 50, "the alert comes within one window of adversarial requests"
    assert alert.rule == "attack" and alert.value > 0.3 and alert.client is None
    assert 100.0 <= alert.first_offending_at <= alert.fired_at
    assert monitor.alerts[-1] == alert


def test_cooldown_silences_a_rule_after_it_fires(guard):
    rule = AlertRule(name="r", metric="reject_rate", window=2, threshold=0.4, cooldown_s=10)
    monitor = Monitor(rules=[rule])
    bad = torch.full((1, 1, 8, 8), float("nan"))
    assert not monitor.observe(guard(bad), bad, now=0.0)
    assert monitor.observe(guard(bad), bad, now=1.0)
    assert not monitor.observe(guard(bad), bad, now=5.0), "inside the cooldown"
    assert monitor.observe(guard(bad), bad, now=12.0)


def test_drift_rules_fire_on_a_shifted_stream_only(guard):
    x_ref, _ = calibration_set(400, seed=1)
    rule = AlertRule(name="drift", metric="drift_ks", window=100, op="<", threshold=0.001)
    same, shifted = Monitor(reference=x_ref, rules=[rule]), Monitor(reference=x_ref, rules=[rule])
    x_same, _ = calibration_set(100, seed=2)
    assert not same.observe(guard(x_same), x_same, now=0.0)
    x_dark = (x_same * 0.7).clamp(0, 1)
    assert shifted.observe(guard(x_dark), x_dark, now=0.0)[0].metric == "drift_ks"


def test_mmd_drift_p_value_is_uniformish_under_no_drift_and_tiny_under_drift():
    from fortify.detect.drift import mmd_drift

    g = torch.Generator().manual_seed(0)
    ref = torch.randn(100, 5, generator=g)
    assert mmd_drift(ref, torch.randn(100, 5, generator=g)).p_value > 0.01
    assert mmd_drift(ref, torch.randn(100, 5, generator=g) + 1.0).p_value < 0.02


def test_prada_tells_natural_queries_from_synthetic_ones():
    """A benign client sends natural images; an extraction client walks small steps from a few seeds."""
    natural, labels = calibration_set(300, seed=8)
    prada = Prada()
    prada.observe("benign", natural, labels)
    g = torch.Generator().manual_seed(0)
    seeds = natural[:5]
    synthetic = (seeds.repeat(60, 1, 1, 1) + 0.02 * torch.randn(300, 1, 8, 8, generator=g)).clamp(0, 1)
    prada.observe("thief", synthetic, labels[:5].repeat(60))
    assert prada.score("benign") > prada.score("thief")
    assert prada.score("thief") < 0.9 < prada.score("benign")
    assert Prada().score("nobody") is None


def test_per_client_rules_watch_each_client_apart(guard):
    rule = AlertRule(name="volume", metric="client_volume", window_s=60, threshold=30, min_count=1)
    monitor = Monitor(rules=[rule])
    x, _ = calibration_set(40, seed=3)
    fired = [a for i in range(40) for a in monitor.observe(guard(x[i : i + 1]), client="a", now=float(i))]
    assert len(fired) == 1 and fired[0].client == "a" and fired[0].value == 31
    assert not monitor.observe(guard(x[:1]), client="b", now=41.0)


def test_rule_files_are_parsed_strictly():
    rules = parse_rules("rules:\n  - {name: a, metric: review_rate, window: 50, threshold: 0.3}\n")
    assert rules[0].window == 50 and rules[0].op == ">"
    bad = {
        "rules:\n  - {name: a, metric: nope, window: 5, threshold: 1}": "unknown metric",
        "rules:\n  - {name: a, metric: review_rate, threshold: 1}": "exactly one of window",
        "rules:\n  - {name: a, name: b, metric: review_rate, window: 5, threshold: 1}": "is repeated",
        "rules: !!python/object/apply:os.system ['true']": "not valid YAML",
        "rules:\n  - {name: a, metric: review_rate, window: 5, threshold: " + "9" * 5000 + "}": (
            "cannot be read"
        ),
        "rules:\n  - {name: a, metric: review_rate, window: 5, threshold: .inf}": "finite",
        "rules:\n  - {name: a, metric: review_rate, window: 5, threshold: 1, extra: 2}": "Extra inputs",
    }
    for text, message in bad.items():
        with pytest.raises(ft.FortifyError, match=message):
            parse_rules(text)


def test_monitor_refuses_rules_it_cannot_evaluate():
    with pytest.raises(ft.FortifyError, match="reference"):
        Monitor(rules=[AlertRule(name="d", metric="drift_mmd", window=10, op="<", threshold=0.01)])
    with pytest.raises(ft.FortifyError, match="unique"):
        Monitor(rules=[ATTACK_RULE, ATTACK_RULE])
