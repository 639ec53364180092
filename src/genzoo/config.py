"""params.yaml: validation against the JSON Schema, defaults, and typed configs.

One validator serves Snakemake (``workflow/rules/common.smk``) and the CLI, so both reject the
same mistakes with the same one-line message naming the key, and both see the same defaults.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import re
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


# YAML 1.1, which PyYAML implements, reads a float only with a dot and a signed exponent: `1e-3`
# and `1e4` are strings there, and the schema would refuse "'1e-3' is not of type 'number'". Both
# ways into the config accept them as the numbers they look like: ParamsLoader reads them as floats
# (genzoo's own reading of params files), and validate_params converts number-like strings at the
# keys the schema types as numbers (Snakemake reads params.yaml and --configfile files itself,
# with its own YAML loader, before genzoo sees them).
_NUMBER = re.compile(r"[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)(?:[eE][-+]?[0-9]+)?")


class ParamsLoader(yaml.SafeLoader):
    """yaml.SafeLoader that also reads `1e-3`, `2E5`, `1.5e3` as floats (YAML 1.2 does)."""


ParamsLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."))


@dataclass
class TrainConfig:
    epochs: int = 10
    max_steps: int | None = None
    max_seconds: float | None = None
    batch_size: int = 100
    lr: float = 0.001
    lr_schedule: str = "constant"
    grad_clip: float | None = None
    val_images: int | None = None
    precision: str = "fp32"
    checkpoint_every: int = 1000
    fused_adam: bool = True


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
            "priority": {"type": "integer", "default": 0,
                         "description": "Scheduling only: when the cores are short, Snakemake "
                                        "starts the training jobs of a higher priority first. "
                                        "Give the longest trainings the highest, so that none "
                                        "starts last and runs alone. Not part of any job's "
                                        "settings: changing it reruns nothing."},
            **cls.section_schemas(),  # before sample, where the hand-written schema had them
            "sample": {"$ref": "#/$defs/sample", "default": {}},
            "datasets": {"type": "array", "items": {"$ref": "#/$defs/dataset"}, "minItems": 1,
                         "uniqueItems": True,
                         "description": "The datasets of data.dataset this model runs on "
                                        "(default: every one of them it can model; naming one "
                                        "it cannot model is an error)."},
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


def _unknown_keys(error: jsonschema.ValidationError) -> list[str]:
    return sorted(set(error.instance) - set(error.schema.get("properties", {})))


def _key_path(error: jsonschema.ValidationError) -> str:
    path = ".".join(str(part) for part in error.absolute_path)
    if error.validator == "additionalProperties":
        unknown = ", ".join(f"{path + '.' if path else ''}{key}" for key in _unknown_keys(error))
        known = ", ".join(sorted(error.schema.get("properties", {})))
        return f"unknown key {unknown} (allowed: {known})"
    return f"{path or '<top level>'}: {error.message}"


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with its local ``$ref`` (#/$defs/...) merged in."""
    if "$ref" not in schema:
        return schema
    target: Any = root
    for part in schema["$ref"].removeprefix("#/").split("/"):
        target = target[part]
    return {**_resolve(target, root), **{k: v for k, v in schema.items() if k != "$ref"}}


def _coerce_numbers(value: Any, schema: dict[str, Any], root: dict[str, Any]) -> Any:
    """``value`` with number-like strings (``'1e-3'``, which YAML 1.1 loaders leave as strings)
    turned into numbers where the schema wants a number or an integer, and integral floats
    (``1e4``) into ints where it wants an integer. Anything else is left for the schema to judge."""
    schema = _resolve(schema, root)
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        return {key: _coerce_numbers(item, properties[key], root) if key in properties else item
                for key, item in value.items()}
    if isinstance(value, list):
        items = schema.get("items")
        return [_coerce_numbers(item, items, root) for item in value] if items else value
    types_ = schema.get("type", [])
    types_ = {types_} if isinstance(types_, str) else set(types_)
    if isinstance(value, str) and types_ & {"number", "integer"} and _NUMBER.fullmatch(value.strip()):
        value = float(value.strip().replace("_", ""))
    if (isinstance(value, float) and value.is_integer() and "integer" in types_
            and "number" not in types_):
        return int(value)
    return value


def _contains(mapping: Any, path: list[Any]) -> bool:
    for part in path:
        if not isinstance(mapping, dict) or part not in mapping:
            return False
        mapping = mapping[part]
    return True


def _setter(path: list[Any], layers: list[tuple[str, Any]], source: str) -> str:
    """The file to name for the value at ``path``: the last one that sets it (later files win,
    as with --configfile); ``source`` when none does (a default)."""
    labels = [label for label, layer in layers if _contains(layer, path)]
    return labels[-1] if labels else source


def _blame(error: jsonschema.ValidationError, layers: list[tuple[str, Any]], source: str) -> str:
    """The file(s) to name for ``error``: those setting an unknown key, or the last one setting
    an offending value; ``source`` when none does."""
    path = list(error.absolute_path)
    if error.validator != "additionalProperties":
        return _setter(path, layers, source)
    labels = [label for label, layer in layers
              if any(_contains(layer, [*path, key]) for key in _unknown_keys(error))]
    return " + ".join(labels) if labels else source


def validate_params(params: dict[str, Any] | None, *, source: str = "params.yaml",
                    layers: list[tuple[str, Any]] | None = None) -> dict[str, Any]:
    """Return a validated copy of ``params`` with every default filled in (and number-like
    strings such as ``'1e-3'`` read as numbers where the schema wants one).

    ``layers``: the (name, content) of each file (or ``--config``) merged into ``params``, in
    order, so that an error names the file that sets the offending key, not just ``source``.

    Raises:
        ParamsError: one line naming the file and the offending key.
    """
    if params is not None and not isinstance(params, dict):
        raise ParamsError(f"{source}: the top level must be a mapping")
    filled = _coerce_numbers(copy.deepcopy(params or {}), _schema(), _schema())
    validator = _Validator(_schema())  # the validator never edits its schema
    error = jsonschema.exceptions.best_match(validator.iter_errors(filled))
    if error is not None:
        raise ParamsError(f"{_blame(error, layers or [], source)}: {_key_path(error)}")
    _select_zoo(filled, source=source, layers=layers or [])
    _fill_seeds(filled)
    _fill_datasets(filled, source=source, layers=layers or [])
    return filled


def _select_zoo(params: dict[str, Any], *, source: str, layers: list[tuple[str, Any]]) -> None:
    """Keep the sections of the models ``zoo`` names, in its order (all of them without it)."""
    zoo = params.get("zoo")
    if zoo is None:
        return
    missing = [name for name in zoo if name not in params["models"]]
    if missing:
        raise ParamsError(f"{_setter(['zoo'], layers, source)}: zoo: {missing[0]} has no section in models "
                          f"(models: {', '.join(params['models']) or 'none'})")
    params["models"] = {name: params["models"][name] for name in zoo}


def run_datasets(params: dict[str, Any]) -> list[str]:
    """The datasets of the run, in the order ``data.dataset`` gives (one name or a list)."""
    named = params["data"]["dataset"]
    return [named] if isinstance(named, str) else list(named)


def dataset_problem(name: str, dataset_name: str, variant: str,
                    arch: dict[str, Any] | None = None) -> str | None:
    """Why network ``name`` cannot model ``dataset_name`` (one line naming the data), or None.

    The class answers for the data alone (``data_problem``: binary pixels only, one channel);
    with ``arch`` the network is also built for that data, so a limit of one setting (colour
    groups that must divide the channels, strides that must divide the sides) is refused here
    too, before any job, never as a shape error in training."""
    from .data import levels_of
    from .datasets import dataset, variant_of
    from .models import build_model, model_class

    spec = dataset(dataset_name)
    shape, levels = tuple(spec.image_shape), levels_of(variant_of(dataset_name, variant))
    problem = model_class(name).data_problem(shape, levels)
    if problem is None and arch is not None:
        try:
            build_model(name, arch, image_shape=shape, levels=levels, num_classes=spec.num_classes)
        except ValueError as error:  # the model's own one-line refusal of these settings
            problem = str(error)
    if problem is None:
        return None
    return f"cannot model {dataset_name} ({'x'.join(map(str, shape))}, {levels} levels): {problem}"


def _fill_datasets(params: dict[str, Any], *, source: str, layers: list[tuple[str, Any]]) -> None:
    """Each model's ``datasets``: by default every dataset of the run its class can model (NADE
    skips colour data); each one it will run on is then checked with its architecture, so a
    model never meets data it cannot take at training time."""
    wanted, variant = run_datasets(params), params["data"]["variant"]
    for name, section in params["models"].items():
        blame = _setter(["models", name, "datasets"], layers, source)
        if "datasets" not in section:
            problems = {data: dataset_problem(name, data, variant) for data in wanted}
            section["datasets"] = [data for data, problem in problems.items() if problem is None]
            if not section["datasets"]:  # nothing to run: say why rather than run nothing
                raise ParamsError(f"{blame}: models.{name}: {name} "
                                  f"{'; '.join(problems.values())}; remove it or add a dataset it can model")
        for data in section["datasets"]:
            if data not in wanted:
                raise ParamsError(f"{blame}: models.{name}.datasets: {data} is not in data.dataset "
                                  f"({', '.join(wanted)})")
            problem = dataset_problem(name, data, variant, section.get("arch", {}))
            if problem is not None:
                raise ParamsError(f"{blame}: models.{name}.datasets: {name} {problem}")


def _fill_seeds(params: dict[str, Any]) -> None:
    """Defaults a schema cannot state: ``seeds`` is [seed], a model's seeds the top-level ones."""
    params.setdefault("seeds", [params["seed"]])
    for section in params["models"].values():
        section.setdefault("seeds", list(params["seeds"]))


def yaml_error(where: str, error: yaml.YAMLError) -> str:
    """One line: the file, the line and column of a YAML syntax error, and what is wrong there."""
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    at = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    context, started = getattr(error, "context", None), getattr(error, "context_mark", None)
    if context and started is not None and (mark is None or started.line != mark.line):
        problem += f" ({context} that starts at line {started.line + 1}, column {started.column + 1})"
    if "'\\t'" in problem:
        problem += " (YAML indents with spaces, not tabs)"
    return f"{where}: {at}not valid YAML: {problem}"


def read_params_file(path: str | Path) -> Any:
    """A params file's content (ParamsLoader: `1e-3` is a float), unvalidated.

    Raises:
        ParamsError: the file is missing or not valid YAML (naming its line and column).
    """
    path = Path(path)
    if not path.exists():
        raise ParamsError(f"{path}: no such params file")
    try:
        return yaml.load(path.read_text(), Loader=ParamsLoader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as error:
        raise ParamsError(yaml_error(str(path), error)) from None



def load_params(path: str | Path) -> dict[str, Any]:
    return validate_params(read_params_file(path), source=str(path))


def build(cls: type[T], values: dict[str, Any] | None, *, where: str) -> T:
    """A typed dataclass from a dict, refusing keys the dataclass does not know."""
    values = dict(values or {})
    known = {field.name for field in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ParamsError(f"{where}: unknown key {', '.join(unknown)} (allowed: {', '.join(sorted(known))})")
    return cls(**values)


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
    """Several params files, later ones merged over earlier ones, validated; an error names the
    file that sets the offending key."""
    layers = [(str(path), read_params_file(path)) for path in paths]
    merged: dict[str, Any] = {}
    for label, layer in layers:
        if not isinstance(layer, dict):
            raise ParamsError(f"{label}: the top level must be a mapping")
        merged = merge_into(merged, layer)
    return validate_params(merged, source=" + ".join(label for label, _ in layers), layers=layers)
