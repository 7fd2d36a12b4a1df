"""Object storage: ``s3://bucket/prefix`` locations, and the one way every component reaches them.

Endpoint, region, addressing style and credentials are resolved once, by botocore, from where the
AWS SDKs take them (``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, ``AWS_REGION``, ``AWS_PROFILE`` and the shared
config and credentials files), into an `S3Access`; s3fs and DuckDB's httpfs secret are both derived
from it. Credentials are never written to the catalog, a log line or an error message: errors
name the bucket and the object, and say which kind of trouble it was.

Object stores have no rename, and ticklake needs none: a data object is written once under its
final unique name, and becomes part of the lake only through the catalog commit that names it.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar
from urllib.parse import urlsplit

from ticklake.errors import ConfigError, StorageError

if TYPE_CHECKING:
    import duckdb
    import s3fs

T = TypeVar("T")
SCHEMES = ("s3",)


def is_uri(location: str | Path) -> bool:
    """Whether a location is an object-store URI rather than a local path.

    >>> is_uri("s3://bucket/lake"), is_uri("lake/ticks/x.parquet"), is_uri(Path("/tmp/lake"))
    (True, False, False)
    """
    return isinstance(location, str) and "://" in location


@dataclass(frozen=True)
class ObjectLocation:
    """A bucket and a key prefix (no leading or trailing slash), e.g. ``s3://ticks/archive``.

    >>> loc = ObjectLocation.parse("s3://ticks/archive/")
    >>> loc.bucket, loc.prefix, loc.uri, loc.join("ticks", "a.parquet")
    ('ticks', 'archive', 's3://ticks/archive', 's3://ticks/archive/ticks/a.parquet')
    >>> ObjectLocation.parse("gs://x/y")
    Traceback (most recent call last):
    ticklake.errors.ConfigError: 'gs://x/y': only s3:// locations are supported
    """

    bucket: str
    prefix: str = ""

    @classmethod
    def parse(cls, uri: str) -> ObjectLocation:
        """Parse ``s3://bucket[/prefix]``; anything else is a ConfigError naming the text."""
        parts = urlsplit(uri)
        if parts.scheme not in SCHEMES:
            raise ConfigError(f"{uri!r}: only s3:// locations are supported")
        if not parts.netloc or parts.query or parts.fragment or "@" in parts.netloc:
            raise ConfigError(f"{uri!r}: expected s3://bucket/prefix (no credentials, query or fragment)")
        return cls(parts.netloc, parts.path.strip("/"))

    @property
    def uri(self) -> str:
        """The location as a URI."""
        return f"s3://{self.bucket}" + (f"/{self.prefix}" if self.prefix else "")

    def join(self, *parts: str) -> str:
        """The URI of a key below this location."""
        return "/".join([self.uri, *(p.strip("/") for p in parts)])

    def key(self, uri: str) -> str:
        """The object key (``bucket/key`` form s3fs takes) of a URI below this location."""
        return uri.removeprefix("s3://")


@dataclass(frozen=True)
class S3Access:
    """Where and as whom to reach S3, as the AWS SDKs resolve it; the secret never shows in a repr."""

    region: str
    endpoint: str | None = None  # e.g. http://127.0.0.1:8333; None: AWS itself
    path_style: bool = False
    key_id: str | None = field(default=None, repr=False)
    secret: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> S3Access:
        """Resolve with botocore: environment, then ``AWS_PROFILE``'s shared config and credentials files."""
        import botocore.session  # noqa: PLC0415 - only object storage needs botocore (~0.2 s)

        env = os.environ if environ is None else environ
        session = botocore.session.Session()
        if environ is not None:  # botocore reads os.environ itself; an explicit mapping wins
            for name, variable in (("profile", "AWS_PROFILE"), ("region", "AWS_REGION")):
                if environ.get(variable):
                    session.set_config_variable(name, environ[variable])
        try:
            scoped = session.get_scoped_config()
        except Exception as e:  # botocore's ProfileNotFound and friends
            raise ConfigError(f"AWS configuration: {type(e).__name__}: {e}") from e
        region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or scoped.get("region") or "us-east-1"
        services = scoped.get("s3") if isinstance(scoped.get("s3"), dict) else {}
        endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or services.get("endpoint_url")
        endpoint = endpoint or scoped.get("endpoint_url")
        style = services.get("addressing_style")
        path_style = style == "path" if style else endpoint is not None  # MinIO, SeaweedFS, ... want path style
        key_id, secret, token = env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY"), env.get("AWS_SESSION_TOKEN")
        if not (key_id and secret):
            credentials = session.get_credentials()
            if credentials is not None:
                frozen = credentials.get_frozen_credentials()
                key_id, secret, token = frozen.access_key, frozen.secret_key, frozen.token
        return cls(region=region, endpoint=endpoint, path_style=path_style, key_id=key_id, secret=secret, token=token)

    def filesystem(self) -> s3fs.S3FileSystem:
        """The s3fs filesystem of these settings, one per process: a new client's first request costs
        0.5-1 s (botocore loads its models, opens a connection), later ones milliseconds. It lists
        nothing into a cache, so sharing it never serves a stale listing."""
        if self not in _FILESYSTEMS:
            _FILESYSTEMS[self] = self._new_filesystem()
        return _FILESYSTEMS[self]

    def download(self, uri: str, target: Path, span: tuple[int, int] | None = None) -> tuple[int, str]:
        """Fetch a whole object, or the `span` (start, length) of it, into `target` with one GET (no
        HEAD: the caller knows its size); return the bytes and their SHA-256, hashed as they stream in.

        botocore's own client, one per process: it starts in ~0.2 s where s3fs's asynchronous one
        takes ~1 s before its first request, which a query on an empty cache would wait for.
        """
        with open(target, "wb") as out:
            return self.download_into(uri, out, span)

    def download_into(self, uri: str, out: BinaryIO, span: tuple[int, int] | None = None) -> tuple[int, str]:
        """`download`, appending to the open file `out`."""
        parts = urlsplit(uri)
        request = {"Bucket": parts.netloc, "Key": parts.path.lstrip("/")}
        if span is not None:
            request["Range"] = f"bytes={span[0]}-{span[0] + span[1] - 1}"
        body = object_errors(uri, lambda: self._client().get_object(**request)["Body"])
        written = 0
        digest = hashlib.sha256()
        for chunk in object_errors(uri, lambda: iter(lambda: body.read(1 << 20), b"")):
            out.write(chunk)
            digest.update(chunk)
            written += len(chunk)
        return written, digest.hexdigest()

    def _client(self) -> Any:
        with _CLIENT_LOCK:  # the read cache downloads from several threads; each must not make its own
            return self._client_unlocked()

    def _client_unlocked(self) -> Any:
        if self not in _CLIENTS:
            import botocore.session  # noqa: PLC0415
            from botocore import UNSIGNED  # noqa: PLC0415
            from botocore.config import Config  # noqa: PLC0415

            config = Config(
                s3={"addressing_style": "path" if self.path_style else "auto"},
                signature_version=None if self.key_id else UNSIGNED,
            )
            _CLIENTS[self] = botocore.session.get_session().create_client(
                "s3",
                endpoint_url=self.endpoint,
                region_name=self.region,
                aws_access_key_id=self.key_id,
                aws_secret_access_key=self.secret,
                aws_session_token=self.token,
                config=config,
            )
        return _CLIENTS[self]

    def _new_filesystem(self) -> s3fs.S3FileSystem:
        import s3fs  # noqa: PLC0415 - s3fs pulls in aiobotocore

        return s3fs.S3FileSystem(
            key=self.key_id,
            secret=self.secret,
            token=self.token,
            anon=not (self.key_id and self.secret),
            endpoint_url=self.endpoint,
            client_kwargs={"region_name": self.region},
            config_kwargs={"s3": {"addressing_style": "path" if self.path_style else "auto"}},
            skip_instance_cache=True,
            use_listings_cache=False,
        )

    def duckdb_secret(self, con: duckdb.DuckDBPyConnection) -> None:
        """Give a DuckDB connection (httpfs loaded) these settings as a temporary secret."""
        from ticklake.query.quoting import quote_literal  # noqa: PLC0415 - keeps storage free of query at import

        options = {"REGION": self.region, "URL_STYLE": "path" if self.path_style else "vhost"}
        if self.key_id and self.secret:
            options.update(KEY_ID=self.key_id, SECRET=self.secret)
        if self.token:
            options["SESSION_TOKEN"] = self.token
        use_ssl = True
        if self.endpoint:
            parts = urlsplit(self.endpoint)
            options["ENDPOINT"] = parts.netloc + parts.path.rstrip("/")
            use_ssl = parts.scheme != "http"
        listed = ", ".join(f"{k} {quote_literal(v)}" for k, v in options.items())
        con.execute(f"CREATE OR REPLACE TEMPORARY SECRET ticklake_s3 (TYPE s3, {listed}, USE_SSL {str(use_ssl).lower()})")


_FILESYSTEMS: dict[S3Access, Any] = {}
_CLIENTS: dict[S3Access, Any] = {}
_CLIENT_LOCK = threading.Lock()


def object_errors(what: str, call: Callable[[], T]) -> T:
    """Run `call`, turning an object-store failure into a one-line StorageError about `what` (a URI).

    The message says what kind of failure it was (access denied, no such bucket or object, the
    endpoint unreachable) and never carries a credential.
    """
    try:
        return call()
    except FileNotFoundError as e:
        raise StorageError(f"{what}: no such object or bucket") from e
    except PermissionError as e:
        raise StorageError(f"{what}: access denied (check the access key and secret, and the bucket's policy)") from e
    except OSError as e:
        raise StorageError(f"{what}: {_reason(e)}") from e
    except Exception as e:
        if type(e).__module__.split(".")[0] in ("botocore", "aiobotocore", "aiohttp", "s3fs"):
            raise StorageError(f"{what}: {_reason(e)}") from e
        raise


def _reason(e: BaseException) -> str:
    """A short reason for an object-store error, without request ids or signatures."""
    text = str(e).splitlines()[0] if str(e) else type(e).__name__
    if "Could not connect" in text or "Cannot connect" in text or isinstance(e, ConnectionError):
        return "cannot reach the object store endpoint"
    if "NoSuchKey" in text or "NoSuchBucket" in text or "(404)" in text:
        return "no such object or bucket"
    if "SignatureDoesNotMatch" in text or "InvalidAccessKeyId" in text or "AccessDenied" in text or "Forbidden" in text:
        return "access denied (check the access key and secret, and the bucket's policy)"
    return f"{type(e).__name__}: {text[:200]}"


def describe(access: S3Access) -> dict[str, Any]:
    """What `ticklake status` may show of an access: endpoint, region and style, never a credential."""
    return {
        "endpoint": access.endpoint or "AWS",
        "region": access.region,
        "url_style": "path" if access.path_style else "vhost",
        "credentials": "set" if access.key_id else "none (anonymous)",
    }
