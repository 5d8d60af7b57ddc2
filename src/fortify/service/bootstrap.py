"""What ``fortify serve`` builds before the app: the zero-config guard bundle and the monitor."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from fortify.service.settings import ServeSettings
from fortify.types import FortifyError

log = logging.getLogger("fortify.service")


def build_default_guard(settings: ServeSettings) -> Path:
    """Calibrate a guard for ``settings.model`` on ``settings.calibrate`` and save it as a bundle.

    ``fortify.runtime.build_guard`` with the runtime's default detectors (or ``settings.detectors``) at
    ``settings.fpr``, on the last ``calibrate_n`` images of the dataset's test split (``fortify
    evaluate`` scores the first ones); the bundle goes to ``run_dir/guard``. Returns its path.
    """
    from fortify.runtime import DEFAULT_DETECTORS, build_guard

    if settings.model is None or settings.calibrate is None:
        raise FortifyError("zero-config serving needs --model FILE and --calibrate DATASET")
    detectors = settings.detectors if settings.detectors is not None else list(DEFAULT_DETECTORS)
    extra = {} if settings.calibrate_n is None else {"n": settings.calibrate_n}
    guard = build_guard(
        settings.model, calibrate=settings.calibrate, fpr=settings.fpr, detectors=detectors, **extra
    )
    target = settings.run_dir / "guard"
    guard.save(str(target))  # the bundle writer replaces an older bundle atomically
    source = (guard.calibration or {}).get("source", {})
    log.info("guard calibrated on %s at fpr %.3g, saved to %s", source, settings.fpr, target)
    return target


def build_monitor(settings: ServeSettings, guard: Any, reference: Any = None) -> Any:
    """A ``fortify.runtime.Monitor`` with the configured rules, or ``None`` when monitoring is off.

    ``reference`` (clean inputs) defaults to ``settings.monitor.reference``'s test split, then to the
    zero-config calibration dataset; rules that need it are dropped (with a log line) when there is none.
    """
    conf = settings.monitor
    if not conf.enabled:
        return None
    from fortify import data
    from fortify.runtime import DEFAULT_RULES, AlertRule, Monitor, load_rules

    if conf.rules is not None and conf.rules_file is not None:
        raise FortifyError("monitor: give rules or rules_file, not both")
    if conf.rules_file is not None:
        rules = load_rules(conf.rules_file)
    elif conf.rules is not None:
        try:
            rules = [AlertRule(**r) for r in conf.rules]
        except (TypeError, ValueError) as exc:
            raise FortifyError(f"monitor.rules: {str(exc).splitlines()[0]}") from None
    else:
        rules = list(DEFAULT_RULES)
    dataset = conf.reference or settings.calibrate
    if reference is None and dataset is not None:
        reference, _ = data.load(dataset, "test", n=conf.reference_n)
    kwargs: dict[str, Any] = {}
    if reference is not None:
        kwargs = {"reference_labels": _labels(guard, reference), "num_classes": guard.num_classes}
    else:
        dropped = [r.name for r in rules if r.metric.startswith("drift_") or r.metric == "class_shift"]
        if dropped:
            log.warning("no monitor reference data: rules %s are off (set monitor.reference)", dropped)
        rules = [r for r in rules if r.name not in dropped]
    return Monitor(reference=reference, rules=rules, **kwargs)


def _labels(guard: Any, x: Any) -> Any:
    import torch

    return torch.tensor([max(v.label, 0) for v in guard(x)], dtype=torch.long)
