"""params.yaml: validation against the JSON Schema, defaults, and typed configs.

One validator serves Snakemake (``workflow/rules/common.smk``) and the CLI, so both reject the
same mistakes with the same one-line message naming the key, and both see the same defaults.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import jsonschema
import yaml

# A symbolic link to workflow/schemas/params.schema.yaml (one copy; packaged with the wheel). It
# holds everything but the models' knobs, which load_schema() adds from their typed configs.
SCHEMA_PATH = Path(__file__).with_name("params.schema.yaml")

T = TypeVar("T")


class ParamsError(ValueError):
    """params.yaml (or a section passed on the command line) does not match the schema."""


@dataclass
class TrainConfig:
    epochs: int = 10
    max_steps: int | None = None
    batch_size: int = 100
    lr: float = 0.001
    grad_clip: float | None = None
    checkpoint_every: int = 1000


@dataclass
class SampleConfig:
    n: int = 64
    nrow: int = 8
    completions: int = 10
    completion_samples: int = 4


_KNOB = "genzoo.knob"  # the dataclass field metadata key knob() writes and config_schema() reads
_JSON_TYPES = {int: "integer", float: "number", bool: "boolean", str: "string"}


def knob(default: Any, doc: str, **constraints: Any) -> Any:
    """A documented config field: its default, description and JSON-Schema constraints.

    ``constraints`` are JSON-Schema keywords (``minimum=1``, ``exclusiveMinimum=0``,
    ``multipleOf=2``, ``minItems=1``, ...), plus ``choices=(...)``, which becomes an ``enum``, and
    ``items={...}``, which constrains a list's items (``items={"minimum": 1}``).
    """
    metadata = {_KNOB: {"description": doc, **constraints}}
    if isinstance(default, (list, dict)):  # mutable: each config gets its own copy
        return dataclasses.field(default_factory=lambda: copy.deepcopy(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def _type_schema(annotation: Any, *, where: str) -> dict[str, Any]:
    """The JSON-Schema type of an annotation: int, float, bool, str, list[...], or X | None."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (types.UnionType, typing.Union) and len(args) == 2 and type(None) in args:
        (inner,) = [arg for arg in args if arg is not type(None)]
        schema = _type_schema(inner, where=where)
        return {**schema, "type": [schema["type"], "null"]}
    if origin is list:
        return {"type": "array", "items": _type_schema(args[0], where=where)}
    if annotation in _JSON_TYPES:
        return {"type": _JSON_TYPES[annotation]}
    raise TypeError(f"{where}: no JSON-Schema type for the annotation {annotation!r}")


def config_schema(cls: type, description: str) -> dict[str, Any]:
    """The JSON Schema of a config dataclass whose fields are all ``knob(...)`` s.

    Raises:
        TypeError: a field is not a knob (every knob must be documented) or has an unknown type.
    """
    hints = typing.get_type_hints(cls)  # resolves string annotations and inherited fields
    properties = {}
    for field in dataclasses.fields(cls):
        where = f"{cls.__name__}.{field.name}"
        if _KNOB not in field.metadata:
            raise TypeError(f"{where} is not a knob(default, doc, ...): every knob needs a description")
        keywords = dict(field.metadata[_KNOB])
        choices = keywords.pop("choices", None)
        schema = _type_schema(hints[field.name], where=where)
        if choices is not None:  # an enum says the type itself (as the hand-written schema did)
            schema = {"enum": list(choices) + ([None] if isinstance(schema["type"], list) else [])}
        if "items" in keywords:
            schema["items"] = {**schema["items"], **keywords.pop("items")}
        default = field.default if field.default_factory is dataclasses.MISSING else field.default_factory()
        properties[field.name] = {**schema, **keywords, "default": default}
    return {"description": description, "type": "object", "additionalProperties": False,
            "default": {}, "properties": properties}


def _model_description(cls: type) -> str:
    """The first paragraph of the model class's docstring, and its paper."""
    paragraph = " ".join((cls.__doc__ or "").strip().split("\n\n")[0].split()).rstrip(".")
    if paragraph and cls.paper:
        return f"{paragraph} — {cls.paper}."
    return f"{paragraph or cls.paper}."


def _model_schema(cls: type) -> dict[str, Any]:
    """A model's params.yaml section: arch (from its Config), train, seeds, sample, and extras."""
    return {
        "description": _model_description(cls),
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "arch": config_schema(cls.Config, f"{cls.__name__} architecture."),
            "train": {"$ref": "#/$defs/train", "default": {}},
            "seeds": {"$ref": "#/$defs/seeds",
                      "description": "This model's runs (default: the top-level seeds)."},
            **cls.section_schemas(),  # before sample, where the hand-written schema had them
            "sample": {"$ref": "#/$defs/sample", "default": {}},
        },
    }


@functools.lru_cache(maxsize=None)
def _schema() -> dict[str, Any]:
    """The full schema, built once; shared, so never mutate it (load_schema() returns a copy)."""
    from .models import JUDGE, MODELS, NETWORKS  # lazily: the model files import knob from here

    with open(SCHEMA_PATH) as handle:
        schema = yaml.safe_load(handle)
    schema["properties"]["models"]["properties"] = {name: _model_schema(cls) for name, cls in MODELS.items()}
    judge = schema["properties"][JUDGE]
    arch = config_schema(NETWORKS[JUDGE].Config, "Classifier architecture.")
    judge["properties"] = {"arch": arch, **judge["properties"]}
    return schema


def load_schema() -> dict[str, Any]:
    """The full params.yaml JSON Schema: the YAML file's top level, and every registered model's
    section generated from its typed config (a fresh copy: callers may edit it)."""
    return copy.deepcopy(_schema())


def _with_defaults(validator_class):
    """A validator class that fills each missing property with a copy of its schema default."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def properties(validator, props, instance, schema):
        if isinstance(instance, dict):
            for key, subschema in props.items():
                if "default" in subschema and key not in instance:
                    instance[key] = copy.deepcopy(subschema["default"])
        yield from validate_properties(validator, props, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": properties})


_Validator = _with_defaults(jsonschema.Draft202012Validator)


def _key_path(error: jsonschema.ValidationError) -> str:
    path = ".".join(str(part) for part in error.absolute_path)
    if error.validator == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        unknown = ", ".join(f"{path + '.' if path else ''}{key}" for key in extra)
        known = ", ".join(sorted(error.schema.get("properties", {})))
        return f"unknown key {unknown} (allowed: {known})"
    return f"{path or '<top level>'}: {error.message}"


def validate_params(params: dict[str, Any] | None, *, source: str = "params.yaml") -> dict[str, Any]:
    """Return a validated copy of ``params`` with every default filled in.

    Raises:
        ParamsError: one line naming the file and the offending key.
    """
    filled = copy.deepcopy(params) if params is not None else {}
    if not isinstance(filled, dict):
        raise ParamsError(f"{source}: the top level must be a mapping")
    validator = _Validator(_schema())  # the validator never edits its schema
    error = jsonschema.exceptions.best_match(validator.iter_errors(filled))
    if error is not None:
        raise ParamsError(f"{source}: {_key_path(error)}")
    _fill_seeds(filled)
    return filled


def _fill_seeds(params: dict[str, Any]) -> None:
    """Defaults a schema cannot state: ``seeds`` is [seed], a model's seeds the top-level ones."""
    params.setdefault("seeds", [params["seed"]])
    for section in params["models"].values():
        section.setdefault("seeds", list(params["seeds"]))


def _read_yaml(path: Path) -> Any:
    if not path.exists():
        raise ParamsError(f"{path}: no such params file")
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ParamsError(f"{path}: not valid YAML ({str(error).splitlines()[0]})") from None


def load_params(path: str | Path) -> dict[str, Any]:
    return validate_params(_read_yaml(Path(path)), source=str(path))


def build(cls: type[T], values: dict[str, Any] | None, *, where: str) -> T:
    """A typed dataclass from a dict, refusing keys the dataclass does not know."""
    values = dict(values or {})
    known = {field.name for field in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ParamsError(f"{where}: unknown key {', '.join(unknown)} (allowed: {', '.join(sorted(known))})")
    return cls(**values)


def parse_json_arg(text: str, *, what: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise ParamsError(f"{what}: not valid JSON ({error})") from None
    if not isinstance(value, dict):
        raise ParamsError(f"{what}: expected a JSON object")
    return value


def merge_into(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """``update`` merged into ``base`` key by key, nested mappings recursively: what Snakemake
    does with ``--configfile``, so the CLI reads several params files as Snakemake does."""
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge_into(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


def merge_params(paths: list[Path]) -> dict[str, Any]:
    """Several params files, later ones merged over earlier ones, validated."""
    merged: dict[str, Any] = {}
    for path in paths:
        merged = merge_into(merged, _read_yaml(Path(path)))
    return validate_params(merged, source=" + ".join(str(path) for path in paths))
