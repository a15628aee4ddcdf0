"""`to_model_inputs`: padding, truncation, dtypes, and errors that name the feature."""

import warnings

import hypothesis
import keras
import numpy as np
import pandas as pd
import pytest
from hypothesis import strategies as st

from keras_rec.features import DenseFeat
from keras_rec.features import FeatureEncoder
from keras_rec.features import SparseFeat
from keras_rec.features import VarLenSparseFeat
from keras_rec.features import to_model_inputs

USER = SparseFeat("user_id", 10)
CITY = SparseFeat("city", vocabulary=["paris", "rome"])
PRICE = DenseFeat("price", 1)
VEC = DenseFeat("vec", 2)
HIST = VarLenSparseFeat(SparseFeat("hist", 100), maxlen=3, length_name="hist_len")
TAGS = VarLenSparseFeat(SparseFeat("tags", vocabulary=["x", "y", "z"]), maxlen=2)
COLUMNS = [USER, CITY, PRICE, VEC, HIST, TAGS]


def frame():
    return pd.DataFrame(
        {
            "user_id": [1, 9, 3],
            "city": ["rome", None, "oslo"],
            "price": [1.5, 0.0, -2.0],
            "vec": [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]],
            "hist": [[5, 6], [], [7, 8, 9, 10]],
            "tags": [["x"], ["y", "z"], []],
        }
    )


def convert(data, columns=COLUMNS, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return to_model_inputs(data, columns, **kwargs)


def test_dataframe_gives_checked_arrays_with_model_dtypes():
    out = convert(frame())
    assert set(out) == {"user_id", "city", "price", "vec", "hist", "hist_len", "tags"}
    np.testing.assert_array_equal(out["user_id"], [1, 9, 3])
    assert out["user_id"].dtype == np.int32
    assert out["city"].tolist() == ["rome", "", "oslo"]  # Missing -> "" (index 0).
    np.testing.assert_array_equal(out["price"], [[1.5], [0.0], [-2.0]])
    assert out["price"].dtype == np.float32
    np.testing.assert_array_equal(out["vec"], [[1, 2], [3, 4], [5, 6]])
    # Padded with 0; the too-long row keeps its most recent (last) items.
    np.testing.assert_array_equal(out["hist"], [[5, 6, 0], [0, 0, 0], [8, 9, 10]])
    assert out["hist"].dtype == np.int32
    np.testing.assert_array_equal(out["hist_len"], [2, 0, 3])
    assert out["tags"].tolist() == [["x", ""], ["y", "z"], ["", ""]]


def test_dict_input_matches_dataframe():
    data = {k: list(v) for k, v in frame().items()}
    expected, actual = convert(frame()), convert(data)
    assert set(actual) == set(expected)
    for key in expected:
        np.testing.assert_array_equal(actual[key], expected[key])


def test_truncation_warns_and_error_mode_raises():
    data = {"hist": [[1, 2, 3, 4, 5], [6]]}
    with pytest.warns(UserWarning, match="'hist'.*maxlen=3"):
        out = to_model_inputs(data, [HIST])
    np.testing.assert_array_equal(out["hist"], [[3, 4, 5], [6, 0, 0]])
    np.testing.assert_array_equal(out["hist_len"], [3, 1])
    with pytest.raises(ValueError, match="'hist'.*length 5 > maxlen=3 at row 0"):
        to_model_inputs(data, [HIST], on_long_sequence="error")
    with pytest.raises(ValueError, match="on_long_sequence='cut'"):
        to_model_inputs(data, [HIST], on_long_sequence="cut")


def test_padded_2d_arrays_keep_the_most_recent_items_when_truncated():
    padded = np.array([[5, 6, 7, 8, 0, 0], [1, 0, 0, 0, 0, 0], [1, 2, 3, 4, 5, 6]])
    with pytest.warns(UserWarning, match="'hist'"):
        out = to_model_inputs({"hist": padded}, [HIST])
    np.testing.assert_array_equal(out["hist"], [[6, 7, 8], [1, 0, 0], [4, 5, 6]])
    np.testing.assert_array_equal(out["hist_len"], [3, 1, 3])
    # Already within maxlen: taken as is, lengths counted from the padding.
    out = to_model_inputs({"hist": padded[:, :3]}, [HIST])
    np.testing.assert_array_equal(out["hist"], padded[:, :3])
    np.testing.assert_array_equal(out["hist_len"], [3, 1, 3])


def test_given_length_column_is_used_and_checked():
    out = to_model_inputs({"hist": [[1, 2], [3, 4]], "hist_len": [1, 2]}, [HIST])
    np.testing.assert_array_equal(out["hist_len"], [1, 2])
    with pytest.raises(ValueError, match="'hist_len'.*'hist'.*Received: 4"):
        to_model_inputs({"hist": [[1], [2]], "hist_len": [1, 4]}, [HIST])
    with pytest.raises(ValueError, match="'hist_len'.*rows"):
        to_model_inputs({"hist": [[1], [2]], "hist_len": [1]}, [HIST])


def test_weights_are_padded_like_their_sequence():
    seq = VarLenSparseFeat(SparseFeat("hist", 100), maxlen=3, weight_name="w")
    data = {"hist": [[1, 2, 3, 4], [5]], "w": [[0.1, 0.2, 0.3, 0.4], [2.0]]}
    with pytest.warns(UserWarning):
        out = to_model_inputs(data, [seq])
    np.testing.assert_allclose(out["w"], [[0.2, 0.3, 0.4], [2.0, 0.0, 0.0]])
    assert out["w"].dtype == np.float32
    with pytest.raises(ValueError, match="'w'.*missing"):
        to_model_inputs({"hist": [[1]]}, [seq])
    with pytest.raises(ValueError, match="'w'.*NaN"):
        to_model_inputs({"hist": [[1]], "w": [[np.nan]]}, [seq])


def test_missing_column_is_named():
    with pytest.raises(ValueError, match=r"\['city'\] missing.*'price', 'user_id'"):
        to_model_inputs({"user_id": [1], "price": [1.0]}, [USER, CITY, PRICE])


def test_strings_for_an_int_feature_without_vocabulary():
    with pytest.raises(TypeError, match="'user_id'.*vocabulary.*use_hash"):
        to_model_inputs({"user_id": ["u1", "u2"]}, [USER])
    with pytest.raises(TypeError, match="'hist'"):
        to_model_inputs({"hist": [["a"], ["b", "c"]]}, [HIST])
    with pytest.raises(TypeError, match="'city'.*numbers"):
        to_model_inputs({"city": [1, 2]}, [CITY])


@pytest.mark.parametrize(
    "values,message",
    [
        ([1, -2], "'user_id'.*negative id: -2"),
        ([1, 10], "'user_id'.*id 10 >= vocabulary_size=10"),
    ],
)
def test_out_of_range_ids_name_feature_and_value(values, message):
    with pytest.raises(ValueError, match=message):
        to_model_inputs({"user_id": values}, [USER])


def test_out_of_range_ids_in_sequences():
    with pytest.raises(ValueError, match="'hist'.*id 100 >= vocabulary_size=100"):
        to_model_inputs({"hist": [[1, 100], [2]]}, [HIST])
    with pytest.raises(ValueError, match="'hist'.*negative id: -1"):
        to_model_inputs({"hist": np.array([[1, -1, 0]])}, [HIST])


def test_ids_beyond_the_input_dtype_are_rejected_not_wrapped():
    hashed = SparseFeat("raw", 10, use_hash=True)  # int32 input
    with pytest.raises(ValueError, match="'raw'.*3000000000.*int32"):
        to_model_inputs({"raw": [1, 3_000_000_000]}, [hashed])
    with pytest.raises(ValueError, match="'user_id'.*1e\\+20|'user_id'.*10000000000"):
        to_model_inputs({"user_id": [1.0, 1e20]}, [USER])


def test_integral_floats_are_accepted_as_ids():
    out = to_model_inputs({"user_id": np.array([1.0, 2.0])}, [USER])
    np.testing.assert_array_equal(out["user_id"], [1, 2])
    assert out["user_id"].dtype == np.int32
    with pytest.raises(TypeError, match="'user_id'"):
        to_model_inputs({"user_id": [1.5, 2.0]}, [USER])


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_dense_names_feature_and_row(bad):
    with pytest.raises(ValueError, match="'price'.*row 2"):
        to_model_inputs({"price": [1.0, 2.0, bad]}, [PRICE])
    with pytest.raises(ValueError, match="'vec'.*row 1"):
        to_model_inputs({"vec": [[1.0, 2.0], [3.0, bad]]}, [VEC])


def test_dense_shape_and_type_errors():
    with pytest.raises(ValueError, match="'vec'.*dimension 2"):
        to_model_inputs({"vec": [1.0, 2.0]}, [VEC])
    with pytest.raises(TypeError, match="'price'.*numbers"):
        to_model_inputs({"price": ["cheap", "dear"]}, [PRICE])
    out = to_model_inputs({"vec": np.ones((2, 2), "float64")}, [VEC])
    assert out["vec"].dtype == np.float32


@pytest.mark.parametrize(
    "data",
    [
        {"user_id": [], "hist": []},
        pd.DataFrame({"user_id": [], "hist": []}),
        {"user_id": np.array([], "int64"), "hist": np.zeros((0, 3), "int64")},
    ],
)
def test_empty_data_raises(data):
    with pytest.raises(ValueError, match="no rows"):
        to_model_inputs(data, [USER, HIST])


def test_row_count_mismatch_and_bad_containers():
    with pytest.raises(ValueError, match="'price' has 1 rows, others have 2"):
        to_model_inputs({"user_id": [1, 2], "price": [1.0]}, [USER, PRICE])
    with pytest.raises(TypeError, match="list"):
        to_model_inputs([[1, 2]], [USER])
    with pytest.raises(ValueError, match="'user_id'.*one value per row"):
        to_model_inputs({"user_id": np.ones((2, 2), "int64")}, [USER])


def test_bytes_strings_are_decoded():
    out = to_model_inputs(
        {"city": np.array([b"rome", b"oslo"]), "tags": [[b"x"], [b"y", b"z"]]},
        [CITY, TAGS],
    )
    assert out["city"].tolist() == ["rome", "oslo"]
    assert out["tags"].tolist() == [["x", ""], ["y", "z"]]


def test_large_int64_ids_in_ragged_sequences_are_exact():
    big = 2**60 + 1
    seq = VarLenSparseFeat(SparseFeat("h", 10, dtype="int64", use_hash=True), maxlen=3)
    out = to_model_inputs({"h": [[big], [1, 2]]}, [seq])
    assert out["h"].dtype == np.int64
    assert int(out["h"][0, 0]) == big


# ----------------------------------------------------------- property tests

KINDS = [
    "sparse",
    "vocab_str",
    "vocab_int",
    "hash_str",
    "hash_int",
    "dense",
    "seq",
    "seq_str",
    "seq_len",
]

SCALAR = st.one_of(
    st.integers(-3, 12),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["", "a", "b", "zz"]),
    st.none(),
    st.booleans(),
)
ELEMENT = st.one_of(
    SCALAR, st.lists(SCALAR, max_size=4), st.lists(st.integers(0, 9), max_size=5)
)


def column_for(kind, name):
    if kind == "sparse":
        return SparseFeat(name, 10, 2)
    if kind == "vocab_str":
        return SparseFeat(name, vocabulary=["a", "b"], embedding_dim=2)
    if kind == "vocab_int":
        return SparseFeat(name, vocabulary=[3, 5, 7], embedding_dim=2)
    if kind == "hash_str":
        return SparseFeat(name, 5, 2, dtype="string", use_hash=True)
    if kind == "hash_int":
        return SparseFeat(name, 5, 2, dtype="int64", use_hash=True)
    if kind == "dense":
        return DenseFeat(name, 1)
    if kind == "seq":
        return VarLenSparseFeat(SparseFeat(name, 10, 2), maxlen=3)
    if kind == "seq_str":
        return VarLenSparseFeat(
            SparseFeat(name, vocabulary=["a", "b"], embedding_dim=2),
            maxlen=2,
            combiner="max",
        )
    return VarLenSparseFeat(
        SparseFeat(name, 10, 2),
        maxlen=3,
        length_name=f"{name}_len",
        weight_name=f"{name}_w",
    )


def good_values(kind):
    return {
        "sparse": st.integers(0, 9),
        "vocab_str": st.sampled_from(["a", "b", "zz", ""]),
        "vocab_int": st.sampled_from([3, 5, 7, 0, 11]),
        "hash_str": st.text(max_size=3),
        "hash_int": st.integers(-(2**62), 2**62),
        "dense": st.floats(-1e6, 1e6),
        "seq": st.lists(st.integers(0, 9), max_size=5),
        "seq_str": st.lists(st.sampled_from(["a", "b", "c"]), max_size=3),
        "seq_len": st.lists(st.integers(0, 9), max_size=5),
    }[kind]


@st.composite
def datasets(draw, clean=False):
    """Random columns and data; unless `clean`, often missing, ragged or
    ill-typed (rare cases compare against a middle value because Hypothesis
    favours boundary values such as 0)."""

    def rarely(one_in):
        return not clean and draw(st.integers(0, one_in - 1)) == one_in // 2

    kinds = draw(st.lists(st.sampled_from(KINDS), min_size=1, max_size=4))
    n = 0 if rarely(10) else draw(st.integers(1, 5))
    columns, data = [], {}
    for i, kind in enumerate(kinds):
        column = column_for(kind, f"f{i}")
        columns.append(column)
        if rarely(20):
            continue  # Missing column.
        rows = n + (draw(st.integers(-1, 1)) if rarely(10) else 0)
        element = (
            st.one_of(good_values(kind), ELEMENT) if rarely(4) else good_values(kind)
        )
        values = [draw(element) for _ in range(max(rows, 0))]
        if kind == "seq_len":
            lengths = [len(v) if isinstance(v, list) else 1 for v in values]
            data[f"f{i}_w"] = [[draw(st.floats(0, 2))] * m for m in lengths]
            if draw(st.booleans()):
                data[f"f{i}_len"] = [min(m, 3) for m in lengths]
        as_objects = draw(st.booleans())
        data[f"f{i}"] = np.asarray(values, dtype=object) if as_objects else values
    as_frame = draw(st.booleans())
    return columns, data, as_frame


def check_output(columns, out):
    n = None
    for column in columns:
        array = out[column.name]
        n = len(array) if n is None else n
        assert len(array) == n > 0
        if isinstance(column, DenseFeat):
            assert array.dtype == np.float32 and array.shape == (n, column.dimension)
            assert np.all(np.isfinite(array))
            continue
        shape = (n,) if isinstance(column, SparseFeat) else (n, column.maxlen)
        assert array.shape == shape
        if column.dtype == "string":
            assert array.dtype == object and all(
                isinstance(v, str) for v in array.reshape(-1)
            )
        else:
            assert array.dtype == np.dtype(column.dtype)
            if not column.needs_lookup:
                assert (
                    array.min(initial=0) >= 0
                    and array.max(initial=0) < column.vocabulary_size
                )
        if isinstance(column, VarLenSparseFeat) and column.length_name:
            lengths = out[column.length_name]
            assert (
                lengths.shape == (n,)
                and lengths.min() >= 0
                and lengths.max() <= column.maxlen
            )
        if isinstance(column, VarLenSparseFeat) and column.weight_name:
            assert out[column.weight_name].shape == (n, column.maxlen)


def convert_or_reject(columns, data, as_frame):
    if as_frame:
        try:
            data = pd.DataFrame(data)
        except ValueError:
            pass  # Columns of different lengths: keep the dict.
    try:
        out = convert(data, columns)
    except (ValueError, TypeError) as error:
        # Every rejection says which feature (or that the data is empty).
        names = [c.name for c in columns] + ["`data`"]
        assert any(name in str(error) for name in names), error
        return None
    check_output(columns, out)
    return out


PROPERTY_SETTINGS = dict(
    deadline=None,
    suppress_health_check=list(hypothesis.HealthCheck),
    database=None,  # Nothing written to the working directory.
    derandomize=True,  # The same examples on every CI run.
)


@hypothesis.settings(max_examples=50, **PROPERTY_SETTINGS)
@hypothesis.given(datasets())
def test_to_model_inputs_yields_valid_output_or_a_clear_error(dataset):
    convert_or_reject(*dataset)


@hypothesis.settings(max_examples=5, **PROPERTY_SETTINGS)
@hypothesis.given(datasets(clean=True))
def test_encoder_model_predicts_on_any_accepted_data(dataset):
    columns = dataset[0]
    out = convert_or_reject(*dataset)
    hypothesis.assume(out is not None)
    keras.utils.set_random_seed(0)
    encoder = FeatureEncoder(columns)
    model = keras.Model(encoder.inputs, encoder.dnn_input())
    # Keras's array adapter turns only 1-D object arrays of str into tf.string;
    # padded string sequences (2-D) go in as tensors.
    feed = {
        name: keras.ops.convert_to_tensor(array, dtype="string")
        if array.dtype == object and array.ndim == 2
        else array
        for name, array in out.items()
    }
    prediction = model.predict(feed, verbose=0)
    width = sum(getattr(c, "embedding_dim", None) or c.dimension for c in columns)
    assert prediction.shape == (len(out[columns[0].name]), width)
    assert np.all(np.isfinite(prediction))
