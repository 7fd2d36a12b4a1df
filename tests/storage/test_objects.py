"""Object-storage access against a real S3 server: one way to resolve credentials, one-line errors
that name the bucket and never the secret, and a read-only identity that cannot write."""

from __future__ import annotations

import pytest

from tests.objectstore import S3Server
from ticklake.errors import StorageError
from ticklake.query.duck import connect_duckdb, load_extension
from ticklake.storage.objects import S3Access, object_errors


def test_s3fs_and_duckdb_share_one_access(s3_env: S3Server, s3_prefix: str) -> None:
    access = S3Access.from_environment()
    assert access.endpoint == s3_env.endpoint and access.path_style
    assert s3_env.writer[1] not in repr(access)
    fs = access.filesystem()
    fs.pipe_file(f"{s3_prefix}/a.txt".removeprefix("s3://"), b"tick")
    con = connect_duckdb()
    load_extension(con, "httpfs")
    access.duckdb_secret(con)
    assert con.sql(f"SELECT content FROM read_text('{s3_prefix}/a.txt')").fetchone() == ("tick",)


def test_wrong_secret_is_one_line_naming_the_bucket(s3_server: S3Server, s3_prefix: str) -> None:
    secret = "not-the-secret-at-all"
    access = S3Access.from_environment(s3_server.env(secret=secret))
    with pytest.raises(StorageError) as e:
        object_errors(s3_prefix, lambda: access.filesystem().cat_file(f"{s3_prefix}/x".removeprefix("s3://")))
    message = str(e.value)
    assert message.startswith(s3_prefix) and "access denied" in message and "\n" not in message
    assert secret not in message and s3_server.writer[1] not in message


def test_reader_identity_reads_but_cannot_write(s3_server: S3Server, s3_prefix: str) -> None:
    writer = S3Access.from_environment(s3_server.env()).filesystem()
    writer.pipe_file(f"{s3_prefix}/r.txt".removeprefix("s3://"), b"data")
    reader = S3Access.from_environment(s3_server.env(reader=True)).filesystem()
    assert reader.cat_file(f"{s3_prefix}/r.txt".removeprefix("s3://")) == b"data"
    with pytest.raises(StorageError, match="access denied"):
        object_errors(s3_prefix, lambda: reader.pipe_file(f"{s3_prefix}/w.txt".removeprefix("s3://"), b"no"))


def test_profile_from_shared_files(tmp_path, s3_server: S3Server) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "credentials").write_text(
        f"[lake]\naws_access_key_id = {s3_server.writer[0]}\naws_secret_access_key = {s3_server.writer[1]}\n"
    )
    (tmp_path / "config").write_text(f"[profile lake]\nregion = eu-west-1\nendpoint_url = {s3_server.endpoint}\n")
    env = {
        "AWS_PROFILE": "lake",
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "credentials"),
        "AWS_CONFIG_FILE": str(tmp_path / "config"),
    }
    with pytest.MonkeyPatch.context() as mp:
        for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL", "AWS_REGION"):
            mp.delenv(k, raising=False)
        for k, v in env.items():
            mp.setenv(k, v)
        access = S3Access.from_environment()
    assert (access.region, access.endpoint, access.key_id) == ("eu-west-1", s3_server.endpoint, s3_server.writer[0])
