"""Errors that stop a run because of the input, with a message an analyst can act on."""


class InputError(Exception):
    """The input cannot be used as a whole (unreadable file, missing required column, ...).

    The message names the file, and the line and column where known, and what to do.
    """


def describe_os_error(exc: OSError) -> str:
    """One line for a file-system failure (full disk, unwritable folder, missing file)."""
    where = exc.filename if exc.filename is not None else "an output file"
    what = exc.strerror or str(exc)
    advice = {
        28: "free some space (or choose another --out) and run again; outputs already there "
            "were left as they were",
        27: "the file grew past the size this process may write (ulimit -f); raise the limit or "
            "choose another --out",
        13: "choose a folder you can write to (--out) or fix its permissions",
        30: "the file system is read-only; choose another --out",
        20: "a part of the path is a file, not a folder; choose another --out",
        21: "the path is a folder, not a file",
    }.get(exc.errno or 0, "check the path and run again")
    return f"cannot write {where}: {what}; {advice}"


DISK_CAUSES = ("No space left on device", "File too large", "Read-only file system")


def disk_cause(exc: Exception) -> str | None:
    """The file-system cause named in a DuckDB error (full disk, file-size limit, read-only file
    system), or None for any other error."""
    text = str(exc)
    return next((cause for cause in DISK_CAUSES if cause in text), None)
