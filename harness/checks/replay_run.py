"""One run's replay, whatever the balancer: each config it ran (start and reloads) replayed with
its own peers, the replays joined in time order, the strips per instance written for the report,
and for algorithms that pick by key alone the keys each change of peers moved."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pandas as pd

from harness.backends.instance import Instance
from harness.checks.remap import keys_moved
from harness.checks.replay import Replay, combined, describe_change
from harness.checks.verdict import Verdict
from harness.models.peers import ModelPeer, Prediction

KeyModel = Callable[[list[ModelPeer]], tuple[str, Callable[[str], Prediction]] | None]


def judge_configs(
    picks: pd.DataFrame,
    generation: pd.Series,
    configs: Sequence[tuple[list[ModelPeer], Sequence[Instance]]],
    replay_one: Callable[[list[ModelPeer], pd.DataFrame], Replay],
    key_model: KeyModel,
    labels: Mapping[str, str],
    strips: Path,
    left_out: str,
) -> list[Verdict]:
    """``generation``: the config (index into ``configs``: its peers and instances) each pick was
    made under; ``labels``: peer name -> instance name, for the strips written to ``strips``."""
    under = generation.to_numpy()
    replays = [
        replay_one(peers, picks[under == index].reset_index(drop=True)) for index, (peers, _) in enumerate(configs)
    ]
    replay = combined(replays)
    replay.strips(labels).to_csv(strips, index=False)
    if len(configs) > 1:
        left_out += f"; {len(configs)} configs (start and reloads), each replayed with its peers"
    verdicts = [replay.verdict(left_out)]
    for index in range(len(configs) - 1):
        before, after = key_model(configs[index][0]), key_model(configs[index + 1][0])
        if before is None or after is None:
            break
        change = describe_change(configs[index][1], configs[index + 1][1])
        verdicts.append(
            keys_moved(picks[under == index], picks[under == index + 1], before[1], after[1], before[0], change)
        )
    return verdicts


def after_failure_note(count: int) -> str:
    return f"; {count:,} picks from the first failed attempt on left out" if count else ""
