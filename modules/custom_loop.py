"""A custom training loop for MultiWorkerMirroredStrategy.

Keras 3's model.fit fails under MultiWorkerMirroredStrategy in TF 2.21 / Keras 3.15
(keras-team/keras#20585: PerReplica values reach `_maybe_symbolic_build` and
`reduce_per_replica`), so multi-worker training runs this loop: `strategy.run` per step, a
fixed number of steps per epoch on every worker (collectives must match), and evaluation
on each worker's full copy of the eval data, so every worker sees the same numbers.
"""

import logging
import time

import keras
import tensorflow as tf

from modules import adversarial
from modules.hparams import HParams

log = logging.getLogger(__name__)


def fit(
    model: keras.Model,
    train_dataset: tf.data.Dataset,
    eval_dataset: tf.data.Dataset,
    hparams: HParams,
    strategy: tf.distribute.Strategy,
    train_examples: int,
    log_dir=None,
):
    """Trains the compiled model (its optimizer and schedule) with strategy.run; returns history."""
    global_batch = hparams.batch_size * strategy.num_replicas_in_sync
    steps = steps_per_epoch(train_examples, global_batch)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    iterator = iter(strategy.experimental_distribute_dataset(train_dataset.repeat().with_options(options)))
    optimizer = model.optimizer

    def step(features, labels):
        if hparams.adversarial_share:
            features = adversarial.mixed_batch(
                model,
                features,
                labels,
                hparams.adversarial_share,
                hparams.adversarial_budget,
                hparams.adversarial_steps,
            )
        with tf.GradientTape() as tape:
            probabilities = model(features, training=True)
            per_example = keras.losses.sparse_categorical_crossentropy(labels, probabilities)
            loss = tf.nn.compute_average_loss(per_example, global_batch_size=global_batch)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss, _correct(probabilities, labels)

    @tf.function
    def train_step():
        loss, correct = strategy.run(step, args=next(iterator))
        return (
            strategy.reduce(tf.distribute.ReduceOp.SUM, loss, axis=None),
            strategy.reduce(tf.distribute.ReduceOp.SUM, correct, axis=None),
        )

    @tf.function
    def eval_step(features, labels):
        return _correct(model(features, training=False), labels)

    writer = tf.summary.create_file_writer(log_dir) if log_dir else None
    history = {"loss": [], "accuracy": [], "val_accuracy": [], "epoch_seconds": []}
    for epoch in range(hparams.epochs):
        started = time.time()
        total_loss = total_correct = 0.0
        for _ in range(steps):
            loss, correct = train_step()
            total_loss += float(loss)
            total_correct += float(correct)
        eval_correct = eval_count = 0.0
        for features, labels in eval_dataset:
            eval_correct += float(eval_step(features, labels))
            eval_count += int(labels.shape[0])
        history["loss"].append(total_loss / steps)
        history["accuracy"].append(total_correct / (steps * global_batch))
        history["val_accuracy"].append(eval_correct / max(1.0, eval_count))
        history["epoch_seconds"].append(round(time.time() - started, 2))
        log.info(
            "epoch %d/%d %.0fs: loss=%.4f accuracy=%.4f val_accuracy=%.4f",
            epoch + 1,
            hparams.epochs,
            history["epoch_seconds"][-1],
            history["loss"][-1],
            history["accuracy"][-1],
            history["val_accuracy"][-1],
        )
        if writer:
            with writer.as_default(step=epoch):
                for name in ("loss", "accuracy", "val_accuracy"):
                    tf.summary.scalar(name, history[name][-1])
    return history


def _correct(probabilities, labels):
    """How many predictions in the batch match their [b, 1] int labels, as a float32 scalar."""
    matches = tf.equal(tf.argmax(probabilities, axis=1), tf.cast(tf.reshape(labels, [-1]), tf.int64))
    return tf.reduce_sum(tf.cast(matches, tf.float32))


def steps_per_epoch(train_examples: int, global_batch: int) -> int:
    """Floor, not ceil: every worker must run the same number of collective steps."""
    return max(1, train_examples // global_batch)
