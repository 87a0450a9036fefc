"""Splits the pinned environment into runtime and development requirements (``make freeze``).

Runtime = the closure of ``install_requires`` in setup.cfg (what the ``s3ta`` command and the
image need) over the installed packages' own requirements; development = every other
installed package (tests, fixtures). Both files pin exact versions from this environment::

    python docker/split_requirements.py            # writes requirements.txt, requirements-dev.txt
"""
from __future__ import annotations

import configparser
import importlib.metadata as md
import re
import sys

HEADER = "# {what}: pinned for Python 3.11 (tensorflow 2.15.1 stack). Regenerate with 'make freeze'.\n"


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(spec: str) -> str:
    return canonical(re.split(r"[\s;<>=!~\[(]", spec.strip(), maxsplit=1)[0])


def _packaging():
    try:
        from packaging.requirements import Requirement
    except ImportError:  # pip vendors packaging
        from pip._vendor.packaging.requirements import Requirement
    return Requirement


def applies(spec: str, extras=(), environment: dict | None = None) -> bool:
    """Whether requirement ``spec`` (a ``Requires-Dist`` line) holds here: its environment
    marker (``python_version``, ``sys_platform``, ...) evaluated for this interpreter, or with
    ``environment`` overriding it, and ``extra == "x"`` true only for the requested ``extras``."""
    marker = _packaging()(spec).marker
    if marker is None:
        return True
    return any(marker.evaluate(dict(environment or {}, extra=e)) for e in ("",) + tuple(extras))


def installed() -> dict:
    return {canonical(d.metadata["Name"]): d for d in md.distributions()}


def closure(roots, dists: dict, environment: dict | None = None) -> set:
    """The installed distributions ``roots`` need, transitively: requirements whose markers hold
    (:func:`applies`), including those of extras a requirement asks for (``etils[epath]``)."""
    requirement = _packaging()
    seen, todo = set(), []
    for r in roots:
        req = requirement(r)
        todo.append((canonical(req.name), frozenset(req.extras)))
    done = set()
    while todo:
        name, extras = todo.pop()
        if (name, extras) in done or name not in dists:
            continue
        done.add((name, extras))
        seen.add(name)
        for line in dists[name].requires or ():
            if applies(line, sorted(extras), environment):
                req = requirement(line)
                todo.append((canonical(req.name), frozenset(req.extras)))
    return seen


def main(setup_cfg: str = "setup.cfg") -> int:
    cfg = configparser.ConfigParser()
    cfg.read(setup_cfg)
    roots = [line.strip() for line in cfg["options"]["install_requires"].splitlines() if line.strip()]
    dists = installed()
    runtime = closure(roots, dists) - {"s3ta-tf"}
    pins = {name: f"{d.metadata['Name']}=={d.version}" for name, d in dists.items()
            if name not in ("s3ta-tf", "pip", "setuptools", "wheel")}
    runtime = {n for n in runtime if n in pins}
    with open("requirements.txt", "w") as f:
        f.write(HEADER.format(what="Runtime dependencies (the image, the s3ta command)"))
        f.writelines(pins[n] + "\n" for n in sorted(pins, key=str.lower) if n in runtime)
    with open("requirements-dev.txt", "w") as f:
        f.write(HEADER.format(what="Development dependencies (tests), on top of the runtime set"))
        f.write("-r requirements.txt\n")
        f.writelines(pins[n] + "\n" for n in sorted(pins, key=str.lower) if n not in runtime)
    print(f"requirements.txt: {len(runtime)} runtime packages; requirements-dev.txt: "
          f"{len(pins) - len(runtime)} more", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
