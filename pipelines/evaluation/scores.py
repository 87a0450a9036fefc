"""Human-normalised Atari scores (SPEC §2): the 57-game reference table and its statistics.

    HNS(game, score) = 100 · (score − random) / (human − random)        (per cent)

0 % is a uniformly random policy, 100 % a professional human game tester. Over a set of
games the papers report the **median**, the **mean** and the **capped mean** (each game's
HNS capped at 100 % before averaging).

Reference scores (random, human): the standard Atari-57 table used by DQN, Rainbow, IMPALA and
R2D2 — undiscounted episode returns averaged over several episodes that start after up to 30
no-ops, capped at 108,000 frames — as kept in DeepMind's DQN Zoo, ``dqn_zoo/atari_data.py``
(https://github.com/google-deepmind/dqn_zoo, Apache-2.0). The numbers are data; the
arithmetic below is this project's own.
"""
from __future__ import annotations

import math
import re
from typing import Dict, Mapping, Optional, Sequence

# game (snake_case, as in the table's source) -> (random, human)
REFERENCE_SCORES: Dict[str, tuple] = {
    "alien": (227.8, 7127.7), "amidar": (5.8, 1719.5), "assault": (222.4, 742.0),
    "asterix": (210.0, 8503.3), "asteroids": (719.1, 47388.7), "atlantis": (12850.0, 29028.1),
    "bank_heist": (14.2, 753.1), "battle_zone": (2360.0, 37187.5), "beam_rider": (363.9, 16926.5),
    "berzerk": (123.7, 2630.4), "bowling": (23.1, 160.7), "boxing": (0.1, 12.1),
    "breakout": (1.7, 30.5), "centipede": (2090.9, 12017.0), "chopper_command": (811.0, 7387.8),
    "crazy_climber": (10780.5, 35829.4), "defender": (2874.5, 18688.9),
    "demon_attack": (152.1, 1971.0), "double_dunk": (-18.6, -16.4), "enduro": (0.0, 860.5),
    "fishing_derby": (-91.7, -38.7), "freeway": (0.0, 29.6), "frostbite": (65.2, 4334.7),
    "gopher": (257.6, 2412.5), "gravitar": (173.0, 3351.4), "hero": (1027.0, 30826.4),
    "ice_hockey": (-11.2, 0.9), "jamesbond": (29.0, 302.8), "kangaroo": (52.0, 3035.0),
    "krull": (1598.0, 2665.5), "kung_fu_master": (258.5, 22736.3),
    "montezuma_revenge": (0.0, 4753.3), "ms_pacman": (307.3, 6951.6),
    "name_this_game": (2292.3, 8049.0), "phoenix": (761.4, 7242.6), "pitfall": (-229.4, 6463.7),
    "pong": (-20.7, 14.6), "private_eye": (24.9, 69571.3), "qbert": (163.9, 13455.0),
    "riverraid": (1338.5, 17118.0), "road_runner": (11.5, 7845.0), "robotank": (2.2, 11.9),
    "seaquest": (68.4, 42054.7), "skiing": (-17098.1, -4336.9), "solaris": (1236.3, 12326.7),
    "space_invaders": (148.0, 1668.7), "star_gunner": (664.0, 10250.0), "surround": (-10.0, 6.5),
    "tennis": (-23.8, -8.3), "time_pilot": (3568.0, 5229.2), "tutankham": (11.4, 167.6),
    "up_n_down": (533.4, 11693.2), "venture": (0.0, 1187.5), "video_pinball": (16256.9, 17667.9),
    "wizard_of_wor": (563.5, 4756.5), "yars_revenge": (3092.9, 54576.9), "zaxxon": (32.5, 9173.3),
}

# ALE ids whose CamelCase is not the plain title-case of the snake_case name.
_ALE_NAME_EXCEPTIONS = {"montezuma_revenge": "MontezumaRevenge", "up_n_down": "UpNDown"}

# Named sets for `s3ta evaluate --env NAME`.
GAME_SETS: Dict[str, tuple] = {
    "atari57": tuple(sorted(REFERENCE_SCORES)),
    # The five games of the agent paper's figures (Section 4) plus Pong.
    "atari-figures": ("breakout", "ms_pacman", "pong", "seaquest", "space_invaders"),
    # Games that a CPU-sized agent learns within ~10M frames.
    "atari-easy": ("boxing", "breakout", "freeway", "pong"),
}


def ale_id(game: str) -> str:
    """``'ms_pacman' -> 'ALE/MsPacman-v5'``."""
    name = _ALE_NAME_EXCEPTIONS.get(game, "".join(part.capitalize() for part in game.split("_")))
    return f"ALE/{name}-v5"


# lower-case ALE game name ('mspacman') -> the table's name ('ms_pacman')
_GAME_BY_ALE_NAME = {ale_id(g)[len("ALE/"):-len("-v5")].lower(): g for g in REFERENCE_SCORES}


def game_name(env_id: str) -> Optional[str]:
    """The table's name of an ALE id (``'ALE/MsPacman-v5' -> 'ms_pacman'``), or None if the id
    is not one of the 57 games."""
    m = re.fullmatch(r"(?:ALE/)?([A-Za-z]+)(?:NoFrameskip)?(?:-v\d+)?", env_id)
    return _GAME_BY_ALE_NAME.get(m.group(1).lower()) if m else None


def table_name(game: str) -> Optional[str]:
    """The table's name of a game given by name (``'pong'``) or ALE id, or None."""
    return game if game in REFERENCE_SCORES else game_name(game)


def human_normalized(game: str, score: float) -> float:
    """100·(score − random)/(human − random) for a game of the table (name or ALE id)."""
    name = table_name(game)
    if name is None:
        raise ValueError(f"{game!r} is not one of the 57 Atari games with reference scores; expected a "
                         f"name such as 'pong' or an ALE id such as 'ALE/Pong-v5'")
    random, human = REFERENCE_SCORES[name]
    return 100.0 * (float(score) - random) / (human - random)


def aggregate(hns: Mapping[str, float], cap: float = 100.0) -> dict:
    """Median, mean and capped mean (each game capped at ``cap`` %) of per-game HNS values."""
    values = [float(v) for v in hns.values() if v is not None and math.isfinite(v)]
    if not values:
        return {"games": 0, "median": None, "mean": None, "capped_mean": None}
    ordered = sorted(values)
    n = len(ordered)
    median = ordered[n // 2] if n % 2 else 0.5 * (ordered[n // 2 - 1] + ordered[n // 2])
    return {"games": n, "median": median, "mean": sum(values) / n,
            "capped_mean": sum(min(v, cap) for v in values) / n}


def expand_env_list(spec: str) -> list:
    """``'ALE/Pong-v5,ALE/Breakout-v5'``, a set name (``atari57``, ``atari-easy``) or a mix of
    both -> a list of environment ids."""
    ids = []
    for item in (s.strip() for s in spec.split(",")):
        if not item:
            continue
        if item in GAME_SETS:
            ids += [ale_id(g) for g in GAME_SETS[item]]
        elif item in REFERENCE_SCORES:
            ids.append(ale_id(item))
        else:
            ids.append(item)
    if not ids:
        raise ValueError(f"--env {spec!r} names no environment; expected ids separated by commas or one of "
                         f"the sets {sorted(GAME_SETS)}")
    return list(dict.fromkeys(ids))


def mean_and_standard_error(values: Sequence[float]) -> tuple:
    n = len(values)
    if n == 0:
        return float("nan"), float("nan")
    mean = sum(values) / n
    if n == 1:
        return mean, float("nan")
    var = sum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, math.sqrt(var / n)
