"""The CRC-32 check of column chunks: every page of an archived file passes, any damaged byte of a
page fails with a StorageError, a damaged header never raises anything else, and a file written
without checksums has nothing to check."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ticklake.config import LakeConfig
from ticklake.errors import StorageError
from ticklake.storage.pages import check_pages, pages
from ticklake.storage.parquet import sort_ticks, write_data_file


def chunks(path: Path) -> list[tuple[int, int]]:
    metadata = pq.ParquetFile(path).metadata
    out = []
    for g in range(metadata.num_row_groups):
        for c in range(metadata.num_columns):
            chunk = metadata.row_group(g).column(c)
            start = chunk.dictionary_page_offset if chunk.has_dictionary_page else chunk.data_page_offset
            out.append((start, start + chunk.total_compressed_size))
    return out


@pytest.fixture(scope="module")
def archived(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, list[tuple[int, int]]]:
    """An archived file of 3,000 ticks in 500-row groups, and its column chunks."""
    config = LakeConfig(root=tmp_path_factory.mktemp("pages"), archive_row_group_rows=500)
    n = 3_000
    table = sort_ticks(
        pa.table(
            {
                "timestamp": pa.array([1_641_500_000_000_000 + 7 * i for i in range(n)], pa.timestamp("us", "UTC")),
                "contract_id": pa.array([i % 13 for i in range(n)], pa.int64()),
                "price": pa.array([100.0 + (i % 89) / 8 for i in range(n)]),
                "exchange": pa.array(["ISLAND", "ARCA", None] * (n // 3)),
            }
        )
    )
    path = config.root / "day.parquet"
    write_data_file(path, table, config, table.schema, archive=True)
    return path.read_bytes(), chunks(path)


def test_every_page_of_an_archived_file_carries_a_crc_that_matches(archived: tuple[bytes, list[tuple[int, int]]]) -> None:
    data, spans = archived
    checked = [check_pages(data, start, end) for start, end in spans]
    assert all(n >= 1 for n in checked) and sum(checked) >= len(spans)


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_any_damaged_byte_of_a_page_is_found(archived: tuple[bytes, list[tuple[int, int]]], data: st.DataObject) -> None:
    raw, spans = archived
    start, end = data.draw(st.sampled_from(spans))
    _, body, size, _ = data.draw(st.sampled_from(pages(raw, start, end)))
    damaged = bytearray(raw)
    damaged[data.draw(st.integers(body, body + size - 1))] ^= data.draw(st.integers(1, 255))
    with pytest.raises(StorageError, match="CRC-32 mismatch"):
        check_pages(bytes(damaged), start, end)


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_a_damaged_header_is_a_storage_error_or_left_to_the_decoder(
    archived: tuple[bytes, list[tuple[int, int]]], data: st.DataObject
) -> None:
    raw, spans = archived
    start, end = data.draw(st.sampled_from(spans))
    at, body, _, _ = data.draw(st.sampled_from(pages(raw, start, end)))
    damaged = bytearray(raw)
    damaged[data.draw(st.integers(at, body - 1))] ^= data.draw(st.integers(1, 255))
    try:
        check_pages(bytes(damaged), start, end)  # a field the check does not read (page type, value count)
    except StorageError:
        pass


def test_a_chunk_cut_short_or_without_checksums(tmp_path: Path, archived: tuple[bytes, list[tuple[int, int]]]) -> None:
    data, spans = archived
    start, end = spans[0]
    with pytest.raises(StorageError, match="run past the column chunk|cannot be read"):
        check_pages(data, start, end - 1)
    plain = tmp_path / "plain.parquet"
    pq.write_table(pa.table({"x": list(range(1000))}), plain)  # no page checksums: nothing to check
    [(s, e)] = chunks(plain)
    assert check_pages(plain.read_bytes(), s, e) == 0
