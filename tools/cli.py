"""`tickring`: the command-line entry point. Each command lives in its own module in tools/ and
is imported only when used, so `tickring --help` and `tickring tail` start fast."""
from __future__ import annotations

import importlib
import os
import sys

import click

# command name -> "module:attribute" of a click command
COMMANDS = {
    "run": "tools.run:command",
    "sim": "tools.sim:command",
    "feed": "tools.feed:command",
    "inspect": "tools.inspect:command",
    "tail": "tools.tail:command",
    "top": "tools.top:command",
    "replay": "tools.replay:command",
    "candles": "tools.candles:command",
    "quality": "tools.quality:command",
    "bench": "tools.bench:command",
    "rm": "tools.rm:command",
    "compactor": "tools.compact:command",
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def __init__(self, *args, lazy: dict[str, str], **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy = lazy

    def list_commands(self, ctx):
        return sorted(n for n in self.lazy if self._load(n, quiet=True) is not None)

    def get_command(self, ctx, name):
        return self._load(name)

    def _load(self, name, quiet=False):
        target = self.lazy.get(name)
        if target is None:
            return None
        module, attr = target.split(":")
        try:
            return getattr(importlib.import_module(module), attr)
        except ModuleNotFoundError as e:
            if e.name == module and quiet:
                return None
            if e.name == module:
                return None
            raise


@click.group(cls=LazyGroup, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="tickring")
def cli():
    """tickring: crypto market data from websockets into shared-memory rings, candles,
    quality grades and Parquet.

    Run `tickring run` with no config for a live demo against the built-in exchange simulator.
    """


def main(argv=None):
    """Console-script entry: user mistakes (shm.ShmError, KeyError, ValueError from config) print
    one clear line and exit non-zero, without a traceback."""
    from shm.errors import ShmError
    try:
        try:
            return cli.main(args=argv, standalone_mode=True)
        except ShmError as e:
            click.echo(f"tickring: {e}", err=True)
            sys.exit(2)
    except SystemExit as e:
        if "pyarrow" in sys.modules:
            _exit_past_arrow(e.code)
        raise


def _exit_past_arrow(code) -> None:
    """Exit without tearing pyarrow down: after Parquet I/O, Arrow's thread pools are sometimes
    still joinable at interpreter exit and std::terminate aborts the process ("terminate called
    without an active exception", exit -6) after the command did all its work - about 1 run in
    10 here with pyarrow 26 (apache/arrow#34314). Flush what Python would, then _exit."""
    import logging
    status = code if isinstance(code, int) else (0 if code is None else 1)
    if code is not None and not isinstance(code, int):
        print(code, file=sys.stderr)
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    os._exit(status)


if __name__ == "__main__":
    main()
