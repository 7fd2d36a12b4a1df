"""Real damaged file systems for tests: a small tmpfs that fills up, a folder nobody may write.

A tmpfs needs mount(2), which the CI has (it runs as root); elsewhere those tests skip with the
reason. A read-only folder is a read-only bind mount of the folder onto itself where mount(2)
is allowed, else ``chattr +i`` (which stops root too), else ``chmod a-w`` (which stops anyone
but root). Everything is undone in ``finally``; a mount lazily if a process still holds it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def _mount(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["mount", *args], capture_output=True, text=True, timeout=30)


def _unmount(target: Path) -> None:
    if subprocess.run(["umount", str(target)], capture_output=True, timeout=30).returncode != 0:
        subprocess.run(["umount", "-l", str(target)], capture_output=True, timeout=30)


def _require_mount() -> None:
    if shutil.which("mount") is None:
        pytest.skip("no mount command on this machine")


@contextmanager
def small_tmpfs(target: Path, size: str = "2m") -> Iterator[Path]:
    """A tmpfs of `size` mounted at `target` (created), unmounted afterwards."""
    _require_mount()
    target.mkdir(parents=True, exist_ok=True)
    done = _mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(target))
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or 'mount failed'}): needs root")
    try:
        yield target
    finally:
        _unmount(target)


@contextmanager
def read_only(folder: Path) -> Iterator[str]:
    """Make `folder` (and all below it) read-only in place, for root too where possible; yields how."""
    if shutil.which("mount") and _mount("--bind", str(folder), str(folder)).returncode == 0:
        try:
            if _mount("-o", "remount,bind,ro", str(folder)).returncode == 0:
                yield "read-only mount"
                return
        finally:
            _unmount(folder)
    if os.geteuid() != 0:
        modes = {p: p.stat().st_mode for p in (folder, *folder.rglob("*"))}
        for path in modes:
            path.chmod(modes[path] & ~0o222)
        try:
            yield "chmod a-w"
        finally:
            for path, mode in modes.items():
                path.chmod(mode)
        return
    folders = [folder, *(p for p in folder.rglob("*") if p.is_dir())]
    if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", *map(str, folders)], capture_output=True).returncode:
        subprocess.run(["chattr", "-i", *map(str, folders)], capture_output=True)
        pytest.skip("running as root without mount(2) or chattr: a read-only folder cannot be made here")
    try:
        yield "chattr +i"  # no file can be created, renamed or removed in these folders
    finally:
        subprocess.run(["chattr", "-i", *map(str, folders)], capture_output=True)


def fill(folder: Path, leave: int) -> Path:
    """Fill the file system of `folder` until about `leave` bytes stay free; return the filler file."""
    filler = folder / "filler"
    free = os.statvfs(folder).f_bavail * os.statvfs(folder).f_frsize
    with open(filler, "wb") as f:
        f.write(b"\0" * max(0, free - leave))
    return filler
