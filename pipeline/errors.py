"""Errors that stop a run because of the input, with a message an analyst can act on."""


class InputError(Exception):
    """The input cannot be used as a whole (unreadable file, missing required column, ...).

    The message names the file, and the line and column where known, and what to do.
    """
