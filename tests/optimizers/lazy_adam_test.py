import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_rec.optimizers import LazyAdam
from keras_rec.optimizers.lazy_adam import _sum_duplicates

VOCAB, DIM = 10, 3


def _train(optimizer, batches, seed=3, jit_compile=False):
    """Fits `Embedding` outputs to targets; returns (start table, layer, kinds).

    The loss of a row depends on that row only, so a row with the same
    gradients follows the same trajectory under any optimizer that treats it
    the same way.
    """
    keras.utils.set_random_seed(seed)
    layer = keras.layers.Embedding(VOCAB, DIM, name="emb")
    layer.build((None, 2))
    start = layer.get_weights()[0].copy()
    variables = layer.trainable_variables

    @tf.function(jit_compile=jit_compile)
    def step(x, y):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.square(layer(x) - y))
        grads = tape.gradient(loss, variables)
        optimizer.apply(grads, variables)
        return grads[0]

    kinds = set()
    for x, y in batches:
        kinds.add(type(step(tf.constant(x), tf.constant(y))).__name__)
    return start, layer, kinds


def _batches(rng, steps, always=(1, 2), others=(3, 4, 5)):
    out = []
    for _ in range(steps):
        rest = rng.choice(others, size=2, replace=False)
        x = np.array([[always[0], rest[0]], [always[1], rest[1]]])
        y = rng.normal(size=(2, 2, DIM))
        out.append((x.astype("int32"), y.astype("float32")))
    return out


def test_rows_touched_every_step_match_dense_adam_exactly():
    batches = _batches(np.random.default_rng(0), steps=20)
    _, dense, _ = _train(keras.optimizers.Adam(0.01), batches)
    _, lazy, kinds = _train(LazyAdam(0.01), batches)
    assert kinds == {"IndexedSlices"}  # The sparse path really ran.
    # Ids 1 and 2 are in every batch.
    np.testing.assert_array_equal(
        lazy.get_weights()[0][[1, 2]], dense.get_weights()[0][[1, 2]]
    )


def test_duplicate_ids_are_summed_before_the_update():
    # Adam of the summed (dense) gradient. Keras's `Adam` squares an
    # IndexedSlices gradient slice by slice, so for a repeated id its second
    # moment gets the sum of the squares instead of the square of the sum;
    # compare with Adam on the densified gradient instead.
    rng = np.random.default_rng(4)
    dense, lazy = (keras.Variable(np.ones((5, 2), "float32")) for _ in range(2))
    adam, lazy_adam = keras.optimizers.Adam(0.1), LazyAdam(0.1)
    for _ in range(4):
        ids = tf.constant([0, 3, 0, 0, 3])
        values = tf.constant(rng.normal(size=(5, 2)).astype("float32"))
        slices = tf.IndexedSlices(values, ids, tf.constant([5, 2]))
        adam.apply([tf.convert_to_tensor(slices)], [dense])
        lazy_adam.apply([slices], [lazy])
    np.testing.assert_allclose(lazy.numpy()[[0, 3]], dense.numpy()[[0, 3]], rtol=1e-6)
    np.testing.assert_array_equal(lazy.numpy()[[1, 2, 4]], 1.0)


def test_duplicate_sums_equal_unsorted_segment_sum_bit_for_bit():
    rng = np.random.default_rng(5)
    ids = tf.constant(rng.zipf(1.3, 20_000).astype("int32") % 3_000)
    values = tf.constant(rng.normal(size=(20_000, 16)).astype("float32"))
    rows, sums = _sum_duplicates(values, ids)
    expected_rows, position = tf.unique(ids)
    expected = tf.math.unsorted_segment_sum(values, position, tf.size(expected_rows))
    np.testing.assert_array_equal(rows.numpy(), expected_rows.numpy())
    np.testing.assert_array_equal(sums.numpy(), expected.numpy())


def test_the_sparse_step_compiles_with_xla():
    # XLA has no sparse matmul kernel: the step falls back to a segment sum.
    batches = _batches(np.random.default_rng(0), steps=5)
    _, plain, _ = _train(LazyAdam(0.01), batches)
    _, xla, kinds = _train(LazyAdam(0.01), batches, jit_compile=True)
    assert kinds == {"IndexedSlices"}
    np.testing.assert_allclose(xla.get_weights()[0], plain.get_weights()[0], rtol=1e-6)


@pytest.mark.parametrize("jit_compile", [False, True])
def test_dense_gradients_take_adams_step_in_one_fused_kernel_without_xla(
    jit_compile, monkeypatch
):
    import keras_rec.optimizers.lazy_adam as lazy_adam

    fused = []
    step = lazy_adam.LazyAdam._fused_dense_step
    monkeypatch.setattr(
        lazy_adam.LazyAdam,
        "_fused_dense_step",
        lambda self, *args: fused.append(1) or step(self, *args),
    )
    rng = np.random.default_rng(2)
    grads = [rng.normal(size=(40, 3)).astype("float32") for _ in range(20)]
    results = []
    for optimizer in (keras.optimizers.Adam(0.01), LazyAdam(0.01)):
        variable = keras.Variable(np.ones((40, 3), "float32"))
        optimizer.build([variable])
        apply = _compiled_apply(optimizer, variable, jit_compile)
        for g in grads:
            apply(tf.constant(g))
        results.append(
            [variable.numpy(), *(w.numpy() for w in optimizer.variables[2:])]
        )
    # TensorFlow's ResourceApplyAdam, not Keras's elementwise ops; under XLA,
    # Keras's ops, which XLA fuses itself.
    assert bool(fused) == (not jit_compile)
    # The same formula in the same order; only the float rounding of the
    # vectorised kernel differs (a 20-step drift of a few ulps).
    for a, b in zip(*results):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
    assert not np.allclose(results[0][0], 1.0)


def _compiled_apply(optimizer, variable, jit_compile):
    @tf.function(jit_compile=jit_compile)
    def apply(gradient):
        optimizer.apply([gradient], [variable])

    return apply


def test_dense_gradients_under_a_strategy_take_keras_adam_step():
    from keras_rec.optimizers.lazy_adam import _fusable

    variable = keras.Variable(np.ones((4, 3), "float32"))
    assert _fusable(variable) and _fusable(variable.value)
    with tf.distribute.OneDeviceStrategy("/cpu:0").scope():
        assert not _fusable(variable)


def test_untouched_rows_and_their_moments_stay_unchanged():
    batches = _batches(np.random.default_rng(1), steps=5)
    optimizer = LazyAdam(0.01)
    start, layer, _ = _train(optimizer, batches)
    table = layer.get_weights()[0]
    untouched = [0, 6, 7, 8, 9]
    np.testing.assert_array_equal(table[untouched], start[untouched])
    assert not np.array_equal(table[[1, 2]], start[[1, 2]])
    index = optimizer._get_variable_index(layer.embeddings)
    for slot in (optimizer._momentums[index], optimizer._velocities[index]):
        assert np.all(slot.numpy()[untouched] == 0)
    # Then a batch of id 1 only: dense Adam still moves ids 2..5 (their
    # moments are set), lazy Adam leaves them where they were.
    only_one = (np.full((2, 2), 1, "int32"), np.zeros((2, 2, DIM), "float32"))
    _, dense_before, _ = _train(keras.optimizers.Adam(0.01), batches)
    _, dense_after, _ = _train(keras.optimizers.Adam(0.01), batches + [only_one])
    _, lazy_after, _ = _train(LazyAdam(0.01), batches + [only_one])
    rows = [2, 3, 4, 5]
    assert (
        dense_after.get_weights()[0][rows] != dense_before.get_weights()[0][rows]
    ).all()
    np.testing.assert_array_equal(lazy_after.get_weights()[0][rows], table[rows])


def test_config_round_trip_and_compile_by_object(tmp_path):
    optimizer = LazyAdam(0.003, beta_1=0.8, epsilon=1e-6, clipnorm=1.0)
    config = optimizer.get_config()
    assert "amsgrad" not in config
    clone = LazyAdam.from_config(config)
    assert clone.get_config() == config
    restored = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert isinstance(restored, LazyAdam)

    ids = keras.Input((2,), dtype="int32")
    x = keras.layers.Flatten()(keras.layers.Embedding(VOCAB, DIM)(ids))
    model = keras.Model(ids, keras.layers.Dense(1)(x))
    model.compile(LazyAdam(0.01), "mse")
    x = np.random.default_rng(0).integers(0, VOCAB, size=(64, 2)).astype("int32")
    history = model.fit(x, np.ones((64, 1)), epochs=3, batch_size=16, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded.optimizer, LazyAdam)
    np.testing.assert_allclose(
        loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6
    )


def test_amsgrad_is_rejected():
    with pytest.raises(ValueError, match="amsgrad=True"):
        LazyAdam(amsgrad=True)
