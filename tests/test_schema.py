"""genzoo.config's generated schema: knob() fields -> JSON Schema, and the full params schema."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import jsonschema
import pytest
import yaml

from genzoo.config import ParamsError, config_schema, knob, load_schema, validate_params
from genzoo.models import JUDGE, MODELS, NETWORKS


@dataclass
class Example:
    count: int = knob(3, "A count.", minimum=1)
    rate: float = knob(0.5, "A rate.", exclusiveMinimum=0, maximum=1)
    flag: bool = knob(False, "A flag.")
    name: str = knob("x", "A name.")
    mode: str = knob("a", "A mode.", choices=("a", "b"))
    sizes: list[int] = knob([4, 2], "Sizes.", minItems=1, items={"minimum": 1})
    limit: int | None = knob(None, "An optional limit.", minimum=1)
    even: int = knob(2, "An even number.", multipleOf=2)


@dataclass
class Derived(Example):
    extra: float | None = knob(1.5, "A knob of the subclass.")


def test_types_defaults_and_constraints():
    schema = config_schema(Example, "An example.")
    assert {key: schema[key] for key in ("description", "type", "additionalProperties", "default")} == {
        "description": "An example.", "type": "object", "additionalProperties": False, "default": {}}
    assert schema["properties"] == {
        "count": {"description": "A count.", "type": "integer", "minimum": 1, "default": 3},
        "rate": {"description": "A rate.", "type": "number", "exclusiveMinimum": 0, "maximum": 1,
                 "default": 0.5},
        "flag": {"description": "A flag.", "type": "boolean", "default": False},
        "name": {"description": "A name.", "type": "string", "default": "x"},
        "mode": {"description": "A mode.", "enum": ["a", "b"], "default": "a"},
        "sizes": {"description": "Sizes.", "type": "array", "items": {"type": "integer", "minimum": 1},
                  "minItems": 1, "default": [4, 2]},
        "limit": {"description": "An optional limit.", "type": ["integer", "null"], "minimum": 1,
                  "default": None},
        "even": {"description": "An even number.", "type": "integer", "multipleOf": 2, "default": 2},
    }
    jsonschema.Draft202012Validator.check_schema(schema)


def test_list_defaults_are_not_shared_between_configs():
    first, second = Example(), Example()
    first.sizes.append(7)
    assert second.sizes == [4, 2] and config_schema(Example, "")["properties"]["sizes"]["default"] == [4, 2]


def test_inherited_fields_come_first():
    properties = config_schema(Derived, "Derived.")["properties"]
    assert list(properties) == [field.name for field in dataclasses.fields(Example)] + ["extra"]
    assert properties["extra"] == {"description": "A knob of the subclass.", "type": ["number", "null"],
                                   "default": 1.5}


def test_a_field_without_knob_is_refused():
    @dataclass
    class Undocumented:
        fine: int = knob(1, "Documented.")
        bare: int = 2

    with pytest.raises(TypeError, match=r"Undocumented\.bare is not a knob"):
        config_schema(Undocumented, "")


def test_an_unsupported_annotation_is_refused():
    @dataclass
    class Odd:
        pair: tuple = knob((1, 2), "A pair.")

    with pytest.raises(TypeError, match=r"Odd\.pair: no JSON-Schema type"):
        config_schema(Odd, "")


# The hand-written schema before it was generated (workflow/schemas/params.schema.yaml).
OLD = yaml.safe_load("""
made:
  properties:
    hidden:
      description: Hidden layer sizes (one layer of 8000 in pytorch-generative).
      type: array
      items: {type: integer, minimum: 1}
      minItems: 1
      default: [8000]
    ordering:
      description: Pixel ordering, natural (raster) or random (a fixed permutation).
      enum: [natural, random]
      default: natural
    mask_seed:
      description: Seed of the random ordering and of the hidden units' degrees.
      type: integer
      minimum: 0
      default: 0
vae:
  properties:
    network:
      description: Encoder/decoder, mlp (fully connected) or conv (stride-2 convolutions).
      enum: [mlp, conv]
      default: mlp
    hidden:
      description: Hidden layer sizes of the mlp encoder (the decoder mirrors them).
      type: array
      items: {type: integer, minimum: 1}
      minItems: 1
      default: [400]
    channels:
      description: conv network only, channels at 14x14 (twice as many at 7x7).
      type: integer
      minimum: 1
      default: 32
    latent:
      description: Size of the latent z.
      type: integer
      minimum: 1
      default: 20
    train_k:
      description: 1 trains on the ELBO; k > 1 on the IWAE bound with k samples.
      type: integer
      minimum: 1
      default: 1
    val_k:
      description: Importance samples of the per-epoch validation bound (1 = ELBO).
      type: integer
      minimum: 1
      default: 1
vqvae_prior_arch:
  properties:
    channels:
      description: Gated units h per stack and layer (the convolutions output 2h).
      type: integer
      minimum: 1
      default: 32
    layers:
      description: Gated layers.
      type: integer
      minimum: 1
      default: 5
    kernel_size:
      description: "k: vertical kernel (k // 2 + 1) x k, horizontal 1 x (k // 2 + 1); odd."
      type: integer
      minimum: 1
      default: 3
    head_channels:
      description: Hidden 1x1 layer of the output head.
      type: integer
      minimum: 1
      default: 32
    embed_dim:
      description: Size of the learned level embedding (grayscale / code priors only).
      type: integer
      minimum: 1
      default: 16
""")


@pytest.mark.parametrize("name", ["made", "vae"])
def test_generated_arch_equals_the_old_hand_written_one(name):
    arch = load_schema()["properties"]["models"]["properties"][name]["properties"]["arch"]
    assert arch["properties"] == OLD[name]["properties"]
    assert arch["type"] == "object" and arch["additionalProperties"] is False and arch["default"] == {}


def test_vqvae_prior_section():
    vqvae = load_schema()["properties"]["models"]["properties"]["vqvae"]["properties"]
    assert list(vqvae) == ["arch", "train", "seeds", "priority", "prior", "sample", "datasets"]
    prior = vqvae["prior"]
    assert prior["default"] == {} and prior["additionalProperties"] is False
    assert prior["properties"]["kind"]["enum"] == ["gated_pixelcnn", "cond_gated_pixelcnn"]
    assert prior["properties"]["arch"]["properties"] == OLD["vqvae_prior_arch"]["properties"]
    assert prior["properties"]["train"] == {"$ref": "#/$defs/train", "default": {}}


def test_every_model_and_the_classifier_is_generated_and_documented():
    schema = load_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    sections = schema["properties"]["models"]["properties"]
    assert list(sections) == list(MODELS)
    archs = [sections[name]["properties"]["arch"] for name in MODELS]
    archs.append(schema["properties"]["classifier"]["properties"]["arch"])
    for name, section in sections.items():
        assert section["description"].strip(), name
        assert {"arch", "train", "seeds", "sample"} <= set(section["properties"]), name
    for cls, arch in zip([*MODELS.values(), NETWORKS[JUDGE]], archs):
        assert set(arch["properties"]) == {field.name for field in dataclasses.fields(cls.Config)}
        for key, knob_schema in arch["properties"].items():
            assert knob_schema["description"].strip(), f"{cls.__name__}.{key}"


def test_load_schema_returns_a_copy():
    load_schema()["properties"]["models"]["properties"].clear()
    assert set(load_schema()["properties"]["models"]["properties"]) == set(MODELS)


@pytest.mark.parametrize("params, message", [
    ({"models": {"made": {"arch": {"hiden": 3}}}},
     "params.yaml: unknown key models.made.arch.hiden (allowed: hidden, mask_seed, ordering)"),
    ({"models": {"nade": {"train": {"lr": -0.01}}}},
     "params.yaml: models.nade.train.lr: -0.01 is less than or equal to the minimum of 0"),
    ({"models": {"pixelcnn": {"arch": {"channels": 3}}}},
     "params.yaml: models.pixelcnn.arch.channels: 3 is not a multiple of 2"),
    ({"models": {"vqvae": {"prior": {"arch": {"layers": 0}}}}},
     "params.yaml: models.vqvae.prior.arch.layers: 0 is less than the minimum of 1"),
    ({"classifier": {"arch": {"features": 0}}},
     "params.yaml: classifier.arch.features: 0 is less than the minimum of 1"),
])
def test_errors_are_one_line_naming_the_key(params, message):
    with pytest.raises(ParamsError) as error:
        validate_params(params)
    assert str(error.value) == message


def test_defaults_are_filled_from_the_typed_configs():
    params = validate_params({"models": {"vqvae": {}, "vae": {"arch": {"latent": 2}}}})
    vqvae = params["models"]["vqvae"]
    assert vqvae["arch"]["epsilon"] == 1e-5 and vqvae["arch"]["ema"] is True
    assert vqvae["prior"]["kind"] == "gated_pixelcnn" and vqvae["prior"]["arch"]["channels"] == 32
    assert params["models"]["vae"]["arch"] == {"latent": 2, "network": "mlp", "hidden": [400],
                                               "channels": 32, "train_k": 1, "val_k": 1}
    assert params["classifier"]["arch"] == {"channels": 32, "features": 128}
