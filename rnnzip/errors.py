"""The package's exception classes."""


class RnnzipError(Exception):
    """An archive cannot be decompressed: not one, damaged, or its model is absent.

    Also the base of :class:`ModelError`, for a model that cannot be used.
    """


class ModelError(RnnzipError):
    """A model directory is missing, incomplete or does not match its card."""
