"""Learning-rate schedules: any torch scheduler, sized to the run, with optional linear warmup."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LinearLR, ReduceLROnPlateau, SequentialLR

from dltrain.errors import ConfigError


def make_scheduler(
    optimizer: Optimizer,
    total: int,
    factory: Callable[..., Any],
    total_steps_arg: str | None = None,
    warmup: int = 0,
    warmup_start_factor: float = 0.1,
) -> Any:
    """`factory(optimizer)`, preceded by `warmup` steps of linear warmup.

    `total` is how many times the schedule will step in this run (epochs, or optimizer
    steps for interval=step); schedulers that need it (OneCycleLR's total_steps,
    CosineAnnealingLR's T_max) receive what is left after warmup as `total_steps_arg`.
    """
    kwargs = {total_steps_arg: max(1, total - warmup)} if total_steps_arg else {}
    main = factory(optimizer, **kwargs)
    if not warmup:
        return main
    if isinstance(main, ReduceLROnPlateau):
        raise ConfigError("sched.warmup cannot precede sched=plateau; set sched.warmup=0")
    ramp = LinearLR(optimizer, start_factor=warmup_start_factor, total_iters=warmup)
    return SequentialLR(optimizer, [ramp, main], milestones=[warmup])
