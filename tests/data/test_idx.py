"""IDX reader: round trips, gzip, corrupt files."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from fortify.data.idx import encode_idx, parse_idx, read_idx, write_idx
from fortify.types import DataError

dtypes = st.sampled_from([np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])


@given(array=hnp.arrays(dtypes, hnp.array_shapes(min_dims=1, max_dims=4, max_side=5)), compress=st.booleans())
def test_round_trip_any_shape_and_type(tmp_path_factory, array, compress):
    path = tmp_path_factory.mktemp("idx") / "a.idx"
    write_idx(path, array, compress=compress)
    back = read_idx(path)
    assert back.shape == array.shape and back.dtype == array.dtype
    np.testing.assert_array_equal(back, array)


def test_truncated_payload_is_reported():
    raw = encode_idx(np.arange(12, dtype=np.uint8).reshape(3, 4))
    with pytest.raises(DataError, match="payload"):
        parse_idx(raw[:-1], "x.idx")


@pytest.mark.parametrize("raw", [b"", b"\x01\x00\x08\x01", b"\x00\x00\x42\x01abcd", b"\x00\x00\x08\x02\x00"])
def test_bad_headers_are_reported(raw):
    with pytest.raises(DataError, match="x.idx"):
        parse_idx(raw, "x.idx")


def test_corrupt_gzip_is_reported():
    raw = gzip.compress(encode_idx(np.zeros(10, dtype=np.uint8)))
    with pytest.raises(DataError, match="gzip"):
        parse_idx(raw[:-8] + b"garbage!", "x.gz")


def test_missing_file_is_reported(tmp_path):
    with pytest.raises(DataError, match="cannot read"):
        read_idx(tmp_path / "nope.idx")
