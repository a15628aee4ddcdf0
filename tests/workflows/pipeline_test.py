import numpy as np

from keras_rec.workflows.pipeline import epoch_batches


def _batches(**kwargs):
    x = {"a": np.arange(103), "b": np.arange(103) * 2.0}
    ds, steps = epoch_batches(x, 10, seed=3, labels=np.arange(103) % 2, **kwargs)
    return steps, [(f["a"].numpy(), f["b"].numpy(), y.numpy()) for f, y in ds]


def test_each_epoch_is_a_permutation_in_full_batches_with_rows_aligned():
    steps, batches = _batches(epochs=2)
    assert steps == 10 and len(batches) == 20
    for epoch in (batches[:10], batches[10:]):
        ids = np.concatenate([a for a, _, _ in epoch])
        assert len(ids) == 100 and len(set(ids.tolist())) == 100
    for a, b, y in batches:
        assert a.shape == (10,)
        np.testing.assert_array_equal(b, a * 2.0)
        np.testing.assert_array_equal(y, a % 2)
    assert not np.array_equal(batches[0][0], batches[10][0])  # Reshuffled.


def test_resuming_at_an_epoch_gives_the_same_batches():
    _, full = _batches(epochs=3)
    _, resumed = _batches(epochs=3, start_epoch=1)
    assert len(resumed) == 20
    for (a, _, _), (b, _, _) in zip(full[10:], resumed):
        np.testing.assert_array_equal(a, b)


def test_unshuffled_epochs_run_in_row_order_and_drop_the_oldest_rows():
    steps, batches = _batches(epochs=2, shuffle=False)
    assert steps == 10 and len(batches) == 20
    # 103 rows in batches of 10: rows 0-2 (the oldest) are left out, the
    # epoch ends on the newest row, and every epoch is the same.
    expected = np.arange(3, 103).reshape(10, 10)
    for epoch in (batches[:10], batches[10:]):
        np.testing.assert_array_equal(np.stack([a for a, _, _ in epoch]), expected)
    for a, b, y in batches:
        np.testing.assert_array_equal(b, a * 2.0)
        np.testing.assert_array_equal(y, a % 2)
