"""The one override grammar of s3ta-tf: ``section.field=value`` strings from the command line.

Every command that takes ``--set`` groups its configs into named sections (``model`` and
``train`` for RL runs; ``model``, ``data`` and ``train`` for classification; ``analysis``) and
reads ``--set section.field=value``. A bare ``field=value`` (the spelling before 0.2.0) is
refused with an error naming the full form.

Values are parsed against the field's declared type: ``int``, ``float``, ``bool``
(``true/false/1/0/yes/no``), ``str``, and tuples of those written as comma lists
(``observation_shape=64,64,3``). An unknown field or an unparsable value raises
``ValueError`` naming the field, the value and the expected form.
"""
from __future__ import annotations

import dataclasses
import math
import sys
import typing
from typing import Any, Callable, Iterable, Mapping, Optional

_BOOL = {"true": True, "1": True, "yes": True, "on": True,
         "false": False, "0": False, "no": False, "off": False}


def _parse_scalar(text: str, typ: Any, field: str) -> Any:
    if typ is bool:
        if text.lower() not in _BOOL:
            raise ValueError(f"--set {field}={text!r}: expected a boolean (true/false)")
        return _BOOL[text.lower()]
    if typ in (int, float, str):
        try:
            return typ(text)
        except ValueError:
            raise ValueError(f"--set {field}={text!r}: expected {typ.__name__}") from None
    raise ValueError(f"--set {field}: fields of type {typ} cannot be set from the command line")


def _parse_value(text: str, typ: Any, field: str) -> Any:
    origin = typing.get_origin(typ)
    if origin is typing.Union:  # Optional[X]
        args = [a for a in typing.get_args(typ) if a is not type(None)]
        if text.lower() in ("none", "null", ""):
            return None
        return _parse_value(text, args[0], field)
    if origin in (tuple, list):
        args = typing.get_args(typ)
        elem = args[0] if args else str
        items = [t for t in text.split(",") if t.strip() != ""]
        return tuple(_parse_scalar(t.strip(), elem, field) for t in items)
    return _parse_scalar(text, typ, field)


def parse_override(cfg_cls: type, item: str) -> tuple[str, Any]:
    """Parses ``"field=value"`` against ``cfg_cls``'s field types."""
    if "=" not in item:
        raise ValueError(f"override {item!r}: expected the form field=value")
    name, text = item.split("=", 1)
    name = name.strip()
    hints = typing.get_type_hints(cfg_cls)
    fields = {f.name for f in dataclasses.fields(cfg_cls)}
    if name not in fields:
        raise ValueError(f"override {item!r}: {cfg_cls.__name__} has no field {name!r}; "
                         f"fields are: {', '.join(sorted(fields))}")
    return name, _parse_value(text.strip(), hints[name], name)


def apply_overrides(cfg, items: Iterable[str] | Mapping[str, Any] | None):
    """Returns a copy of dataclass ``cfg`` with overrides applied (strings or a mapping)."""
    if not items:
        return cfg
    if isinstance(items, Mapping):
        fields = {f.name for f in dataclasses.fields(cfg)}
        bad = set(items) - fields
        if bad:
            raise ValueError(f"{type(cfg).__name__} has no field(s) {sorted(bad)}")
        changes = dict(items)
    else:
        changes = dict(parse_override(type(cfg), it) for it in items)
    return dataclasses.replace(cfg, **changes)


def check_ranges(cfg, section: str, positive=(), non_negative=(), positive_float=(),
                 non_negative_float=(), finite=()) -> None:
    """Raises ValueError naming ``section.field``, its value and the allowed range for the first
    field out of range: ``finite`` floats not NaN or inf (checked first), ``positive`` ints
    (every element for tuples) >= 1, ``non_negative`` ints >= 0, ``positive_float`` > 0 (NaN
    fails; inf passes unless the field is also ``finite``), ``non_negative_float`` >= 0."""
    def values(name):
        v = getattr(cfg, name)
        return [] if v is None else list(v) if isinstance(v, (tuple, list)) else [v]

    for names, ok, allowed in ((finite, math.isfinite, "finite"),
                               (positive, lambda x: x >= 1, "integers >= 1"),
                               (non_negative, lambda x: x >= 0, "integers >= 0"),
                               (positive_float, lambda x: x > 0, "> 0"),
                               (non_negative_float, lambda x: x >= 0, ">= 0")):
        for name in names:
            if not all(ok(x) for x in values(name)):
                raise ValueError(f"{section}.{name} must be {allowed}, got {getattr(cfg, name)!r}")


def to_dict(cfg) -> dict:
    """JSON-friendly dict of a config dataclass (tuples become lists)."""
    return dataclasses.asdict(cfg)


def from_dict(cfg_cls: type, data: Mapping[str, Any]):
    """Inverse of :func:`to_dict`; lists become tuples for tuple-typed fields."""
    hints = typing.get_type_hints(cfg_cls)
    kwargs = {}
    for f in dataclasses.fields(cfg_cls):
        if f.name in data:
            v = data[f.name]
            if typing.get_origin(hints[f.name]) is tuple and v is not None:
                v = tuple(v)
            kwargs[f.name] = v
    return cfg_cls(**kwargs)


def from_preset(presets: Mapping[str, Any], preset: str, overrides=None, kind: str = "preset"):
    """``presets[preset]`` with ``overrides`` (``["field=value", ...]`` or a dict) applied;
    an unknown name raises ValueError listing the known ones."""
    if preset not in presets:
        raise ValueError(f"unknown {kind} {preset!r}; expected one of {sorted(presets)}")
    return apply_overrides(presets[preset], overrides)


def warn(message: str) -> None:
    """A deprecation or advice line on stderr (``warning: ...``)."""
    print(f"warning: {message}", file=sys.stderr)


def split_sections(sections: Mapping[str, Any], items: Iterable[str] | None,
                   warn: Optional[Callable[[str], None]] = warn) -> dict:
    """Groups ``section.field=value`` strings by section: ``{section: ["field=value", ...]}``.

    ``sections`` maps each section name to its config dataclass (class or instance). An
    unknown section, or a bare ``field=value`` (removed in 0.2.0), raises ValueError naming the
    override and its full spelling (or the sections, when no section or several have the field).
    A field set more than once keeps its last value (:func:`last_of_each`: ``warn`` names it and
    its values)."""
    grouped = {name: [] for name in sections}
    fields = {name: {f.name for f in dataclasses.fields(cfg)} for name, cfg in sections.items()}
    names = tuple(sections)
    for item in items or ():
        if "=" not in item:
            raise ValueError(f"override {item!r}: expected the form section.field=value "
                             f"(sections: {', '.join(names)})")
        key, value = item.split("=", 1)
        key = key.strip()
        if "." in key:
            section, field = key.split(".", 1)
            if section not in sections:
                raise ValueError(f"override {item!r}: unknown section {section!r}; expected one of "
                                 f"{', '.join(names)} (section.field=value)")
            grouped[section].append(f"{field}={value}")
            continue
        owners = [name for name in names if key in fields[name]]
        if len(owners) == 1:
            raise ValueError(f"override {item!r}: a bare field=value was removed in 0.2.0; use "
                             f"--set {owners[0]}.{key}={value}")
        where = "in no section" if not owners else f"in several sections ({', '.join(owners)})"
        raise ValueError(f"override {item!r}: field {key!r} is {where}; write it as "
                         f"section.field=value with section one of {', '.join(names)}")
    return {name: last_of_each(name, group, warn) for name, group in grouped.items()}


def last_of_each(section: str, items: list, warn: Optional[Callable[[str], None]] = warn) -> list:
    """``field=value`` items of one section with one value per field: the last given, where it
    was given; ``warn`` is told each field set to different values, with its values."""
    fields = [item.split("=", 1)[0].strip() for item in items]
    last = {field: i for i, field in enumerate(fields)}
    for field in last:
        values = [item.split("=", 1)[1].strip() for item, f in zip(items, fields) if f == field]
        if len(set(values)) > 1 and warn is not None:
            times = "twice" if len(values) == 2 else f"{len(values)} times"
            warn(f"{section}.{field} is set {times} ({', '.join(values[:-1])}, then {values[-1]}): "
                 f"{values[-1]} is used")
    return [item for i, item in enumerate(items) if last[fields[i]] == i]


def join_sections(grouped: Mapping[str, Iterable[str]]) -> list:
    """The inverse of :func:`split_sections`: ``["section.field=value", ...]``, section by section."""
    return [f"{section}.{item}" for section, items in grouped.items() for item in items]

