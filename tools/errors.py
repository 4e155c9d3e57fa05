"""Turning known user mistakes into one clear line and a non-zero exit."""
from __future__ import annotations

import functools

import click

from shm.errors import ShmError


def friendly(fn):
    """Decorator for click commands: ShmError / KeyError / ValueError become a click error."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (ShmError, KeyError, ValueError, FileNotFoundError) as e:
            msg = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
            raise click.ClickException(str(msg)) from None
    return wrapper
