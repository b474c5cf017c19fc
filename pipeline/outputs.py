"""Writing output files: whole or not at all, readable by the owner only.

A run killed half way must not leave a truncated CSV that looks complete. Every output is
written beside its target under a hidden temporary name and renamed over it when complete
(a rename within one folder is atomic on POSIX file systems).
"""

from __future__ import annotations

import contextlib
import errno as errnos
import os
import re
from collections.abc import Iterator
from pathlib import Path

OWNER_ONLY_UMASK = 0o077  # files 0600, folders 0700: outputs hold health data


@contextlib.contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path to write; it replaces `target` only if the block succeeds."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.partial-{os.getpid()}")
    try:
        yield temporary
        os.replace(temporary, target)
    except OSError as exc:
        raise named(exc, target) from exc
    finally:
        temporary.unlink(missing_ok=True)


class OutputGroup:
    """Files written under temporary names that replace their targets together (`atomic_paths`),
    so a failure while writing any of them leaves every previous output as it was."""

    def __init__(self) -> None:
        self.pending: dict[Path, Path] = {}  # temporary -> target

    def path(self, target: Path) -> Path:
        """A temporary path to write in place of `target`."""
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.partial-{os.getpid()}")
        self.pending[temporary] = target
        return temporary

    @contextlib.contextmanager
    def writing(self, temporary: Path) -> Iterator[None]:
        """An OSError raised in the block, not yet naming a file, names the target of
        `temporary` (the block writes it while other files of the group are open)."""
        try:
            yield
        except OSError as exc:
            if exc.filename is not None:
                raise
            raise named(exc, self.pending[temporary]) from exc


@contextlib.contextmanager
def atomic_paths() -> Iterator[OutputGroup]:
    """Yield an OutputGroup; its files replace their targets only if the block succeeds."""
    group = OutputGroup()
    try:
        yield group
        for temporary, target in group.pending.items():
            with group.writing(temporary):
                os.replace(temporary, target)
    finally:
        for temporary in group.pending:
            temporary.unlink(missing_ok=True)


RUST_OS_ERROR = re.compile(r"\(os error (\d+)\)")


def named(exc: OSError, target: Path) -> OSError:
    """The error with the output's name and errno (polars' Rust writers give neither)."""
    number = exc.errno
    if number is None and (match := RUST_OS_ERROR.search(str(exc))):
        number = int(match.group(1))
    if number is None:
        return exc
    return OSError(number, os.strerror(number) if number in errnos.errorcode else str(exc),
                   str(target))


def check_folder_path(folder: Path) -> None:
    """Fail before any work when `folder` can never be a folder: it, or the nearest part of its
    path that exists, is a file (the `--out` of a command; the error `mkdir` would give at the
    end of the run, given at its start)."""
    existing = Path(folder)
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        raise NotADirectoryError(errnos.ENOTDIR, os.strerror(errnos.ENOTDIR), str(folder))
