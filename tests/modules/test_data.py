"""The input pipeline over real Transform output format."""

import numpy as np
import pytest
import tensorflow as tf

from modules import data, features


def _write_transformed(tmp_path, images, labels, order=range(10)):
    """Ten transformed records as Transform writes them, in the given order; returns their feature spec."""
    key, label_key = features.transformed_name(features.IMAGE_KEY), features.transformed_name(features.LABEL_KEY)
    with tf.io.TFRecordWriter(str(tmp_path / "part-0.gz"), options="GZIP") as w:
        for img, lab in ((images[i], labels[i]) for i in order):
            w.write(
                tf.train.Example(
                    features=tf.train.Features(
                        feature={
                            key: tf.train.Feature(
                                float_list=tf.train.FloatList(value=(img.reshape(-1) / 255.0).tolist())
                            ),
                            label_key: tf.train.Feature(int64_list=tf.train.Int64List(value=[int(lab)])),
                        }
                    )
                ).SerializeToString()
            )
    return {
        key: tf.io.FixedLenFeature([features.NUM_PIXELS], tf.float32),
        label_key: tf.io.FixedLenFeature([1], tf.int64),
    }


def test_input_fn_and_count_over_gzipped_records(tmp_path, few_images):
    images, labels = few_images
    key = features.transformed_name(features.IMAGE_KEY)
    spec = _write_transformed(tmp_path, images, labels)
    assert data.count_records([str(tmp_path / "*")]) == 10
    batches = list(data.input_fn([str(tmp_path / "*")], spec, batch_size=4))
    assert [b[1].shape[0] for b in batches] == [4, 4, 2]
    np.testing.assert_array_equal(np.concatenate([b[1].numpy().ravel() for b in batches]), labels[:10])
    np.testing.assert_allclose(batches[0][0][key].numpy(), images[:4].reshape(4, -1) / 255.0, rtol=1e-6)
    cached = list(data.input_fn([str(tmp_path / "*")], spec, batch_size=4, cache=True))
    assert [b[1].shape[0] for b in cached] == [4, 4, 2]
    pixels = np.concatenate([b[0][key].numpy() for b in cached])
    order = [
        int(np.flatnonzero((np.abs(images[:10].reshape(10, -1) / 255.0 - row) < 1e-6).all(axis=1))[0]) for row in pixels
    ]
    assert sorted(order) == list(range(10))  # every example once, each with its own label
    np.testing.assert_array_equal(np.concatenate([b[1].numpy().ravel() for b in cached]), labels[:10][order])
    # Cached and shuffled: two epochs see the same examples in different orders.
    shuffled = data.input_fn([str(tmp_path / "*")], spec, batch_size=10, shuffle_buffer=10, cache=True)
    first, second = (np.concatenate([b[1].numpy().ravel() for b in shuffled]) for _ in range(2))
    assert sorted(first) == sorted(second) == sorted(labels[:10]) and list(first) != list(second)


def test_cached_examples_come_in_one_order_whatever_order_the_files_hold(tmp_path, few_images):
    """ExampleGen's Reshuffle writes another order every run; the Trainer trains on the same one,
    and keras_baseline orders its arrays the same way (data.canonical_order)."""
    key = features.transformed_name(features.IMAGE_KEY)
    read = []
    for name, order in (
        ("forward", range(10)),
        ("backward", range(9, -1, -1)),
        ("mixed", (3, 7, 0, 9, 1, 5, 2, 8, 6, 4)),
    ):
        (tmp_path / name).mkdir()
        spec = _write_transformed(tmp_path / name, *few_images, order=order)
        batches = list(data.input_fn([str(tmp_path / name / "*")], spec, batch_size=10, cache=True))
        read.append((batches[0][0][key].numpy(), batches[0][1].numpy().ravel()))
    for pixels, labels in read[1:]:
        np.testing.assert_array_equal(pixels, read[0][0])
        np.testing.assert_array_equal(labels, read[0][1])
    x = (few_images[0][:10].reshape(10, -1) / 255.0).astype(np.float32)
    y = few_images[1][:10].astype(np.int64).reshape(-1, 1)
    order = data.canonical_order({key: x}, y)
    np.testing.assert_array_equal(x[order], read[0][0])  # the bench's arrays, ordered alike
    assert list(order) != list(range(10))  # a real reordering, not the file order by luck


def test_counted_records_make_the_number_of_batches_known(tmp_path, few_images):
    spec = _write_transformed(tmp_path, *few_images)
    files = [str(tmp_path / "*")]
    assert data.input_fn(files, spec, batch_size=4).cardinality() == tf.data.UNKNOWN_CARDINALITY
    known = data.input_fn(files, spec, batch_size=4, shuffle_buffer=10, cache=True, records=10)
    assert known.cardinality() == 3
    assert sum(int(b[1].shape[0]) for b in known) == 10
    # A wrong count is not trusted silently: iterating says the input had another length.
    with pytest.raises(tf.errors.FailedPreconditionError, match="expected to contain 5 elements but contained only 3"):
        list(data.input_fn(files, spec, batch_size=4, records=20))


def test_mnist_fits_the_cache_budget_and_a_huge_span_does_not():
    assert data.fits_in_cache(60_000)
    assert not data.fits_in_cache(1_120_000)


def test_batches_depend_on_their_seed_not_on_what_was_seeded_before(few_images):
    key = features.transformed_name(features.IMAGE_KEY)
    examples = tf.data.Dataset.from_tensor_slices(
        ({key: few_images[0][:32].reshape(32, -1) / 255.0}, few_images[1][:32])
    )
    runs = []
    for earlier in (None, 7, 123):
        if earlier is not None:
            tf.random.set_seed(earlier)
        first = next(iter(data.batches(examples, 8, shuffle_buffer=32, seed=3)))
        runs.append(first[1].numpy())
    np.testing.assert_array_equal(runs[0], runs[1])
    np.testing.assert_array_equal(runs[0], runs[2])
    other = next(iter(data.batches(examples, 8, shuffle_buffer=32, seed=4)))[1].numpy()
    assert list(other) != list(runs[0])
