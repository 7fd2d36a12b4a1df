"""The one atomic write: readers see nothing or everything, and a failure leaves no temporary file."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ticklake.errors import StorageError
from ticklake.storage.files import publish, temp_name, write_atomic


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_bytes_and_writers_land_whole_with_their_size(tmp_path: Path) -> None:
    assert write_atomic(tmp_path / "a" / "b.jsonl", b"one\ntwo\n") == 8
    assert (tmp_path / "a" / "b.jsonl").read_bytes() == b"one\ntwo\n"
    table = pa.table({"x": [1, 2, 3]})
    size = write_atomic(tmp_path / "t.parquet", lambda tmp: pq.write_table(table, tmp))
    assert size == (tmp_path / "t.parquet").stat().st_size and pq.read_table(tmp_path / "t.parquet").equals(table)
    assert leftovers(tmp_path) == [] and leftovers(tmp_path / "a") == []


def test_a_failing_writer_leaves_nothing(tmp_path: Path) -> None:
    def half(tmp: Path) -> None:
        tmp.write_bytes(b"half a file")
        raise RuntimeError("the writer died")

    with pytest.raises(RuntimeError, match="the writer died"):
        write_atomic(tmp_path / "x.parquet", half)
    assert list(tmp_path.iterdir()) == []


def test_an_unwritable_place_is_one_error_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "lake").write_text("a file where a folder belongs")
    target = tmp_path / "lake" / "ticks" / "f.parquet"
    with pytest.raises(StorageError) as raised:
        write_atomic(target, b"data")
    assert str(raised.value) == f"{target}: cannot write: Not a directory"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lake"]


def test_exclusive_publish_never_replaces_a_sealed_file(tmp_path: Path) -> None:
    write_atomic(tmp_path / "w-000001.jsonl", b"sealed\n")
    with pytest.raises(StorageError, match="cannot write: file exists already"):
        write_atomic(tmp_path / "w-000001.jsonl", b"other\n", exclusive=True)
    assert (tmp_path / "w-000001.jsonl").read_bytes() == b"sealed\n" and leftovers(tmp_path) == []
    tmp = temp_name(tmp_path / "w-000002.jsonl")
    tmp.write_bytes(b"filled over time\n")
    publish(tmp, tmp_path / "w-000002.jsonl", exclusive=True)
    assert (tmp_path / "w-000002.jsonl").read_bytes() == b"filled over time\n" and not tmp.exists()


def test_new_folders_on_the_way_are_made_and_each_parent_fsynced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import ticklake.storage.files as files

    synced: list[Path] = []
    real = files.fsync_dir
    monkeypatch.setattr(files, "fsync_dir", lambda folder: (synced.append(Path(folder)), real(folder))[1])
    target = tmp_path / "a" / "b" / "c.txt"
    write_atomic(target, b"x")
    assert target.read_bytes() == b"x"
    assert synced == [tmp_path, tmp_path / "a", tmp_path / "a" / "b"]  # each new folder's entry, then the rename
    synced.clear()
    write_atomic(tmp_path / "a" / "b" / "d.txt", b"y")
    assert synced == [tmp_path / "a" / "b"]  # folders already there: only the rename
