"""The curated schema file: loadable by TFDV and in agreement with modules/features.py."""

import tensorflow_data_validation as tfdv

from modules import features
from pipeline import configs


def _schema():
    return tfdv.load_schema_text(configs.SCHEMA_FILE)


def test_feature_names_match_the_keys_module():
    assert sorted(f.name for f in _schema().feature) == sorted(
        [features.IMAGE_KEY, features.LABEL_KEY, features.SOURCE_KEY]
    )


def test_image_constraints():
    image = tfdv.get_feature(_schema(), features.IMAGE_KEY)
    assert [d.size for d in image.shape.dim] == [features.NUM_PIXELS]
    assert (image.int_domain.min, image.int_domain.max) == (0, features.MAX_PIXEL_VALUE)
    assert image.presence.min_fraction == 1.0


def test_label_constraints_and_serving_environment():
    schema = _schema()
    label = tfdv.get_feature(schema, features.LABEL_KEY)
    assert (label.int_domain.min, label.int_domain.max) == (0, features.NUM_CLASSES - 1)
    assert label.presence.min_fraction == 1.0
    assert list(label.not_in_environment) == ["SERVING"]
    assert set(schema.default_environment) == {"TRAINING", "SERVING"}


def test_only_the_image_is_served():
    schema = _schema()
    served = [f.name for f in schema.feature if "SERVING" not in f.not_in_environment]
    assert served == [features.IMAGE_KEY]
    assert sorted(f.name for f in schema.feature if f.name != features.IMAGE_KEY) == sorted(features.NOT_SERVED_KEYS)
