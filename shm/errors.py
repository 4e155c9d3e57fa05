"""Errors a user of shared memory can get, each saying what was wrong and what exists."""


class ShmError(Exception):
    """Base of every shared-memory error; the CLI prints its message without a traceback."""


class SegmentNotFound(ShmError):
    """No segment of that name; the message lists the ones that exist."""


class RingNotFound(SegmentNotFound):
    """No ring of that name; the message lists the live rings."""


class LayoutMismatch(ShmError):
    """The segment was written by another layout version or record schema."""


class SegmentExists(ShmError):
    """create() on a name that is already in use."""
