"""Venue feeds: one file per venue (its declaration and decoder), shared connection machinery,
and the exchange simulator.

    from feeds import decoder_for
    dec = decoder_for("binance")
    recs = dec.decode(frame_bytes, ts_recv_ns)
"""
from __future__ import annotations

import importlib

from .decoder import BookEvent, Decoder, DecodeError, InstrumentMap
from . import venue as _venue_module  # noqa: F401  load the submodule first: the venue() below must win the name

# venue id -> module in feeds/ that declares it (a module-level VENUE: feeds.venue.Venue)
VENUE_MODULES = {
    "binance": "feeds.binance",
    "binance_usdm": "feeds.binance_usdm",
    "bybit": "feeds.bybit",
    "okx": "feeds.okx",
    "coinbase": "feeds.coinbase",
    "kraken": "feeds.kraken",
    "bitget": "feeds.bitget",
    "gateio": "feeds.gateio",
    "kucoin": "feeds.kucoin",
}


def implemented() -> list[str]:
    """Venue ids whose module exists."""
    out = []
    for venue, mod in VENUE_MODULES.items():
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as e:
            if e.name == mod:
                continue
            raise
        out.append(venue)
    return out


def venue(name: str):
    """The declaration (feeds.venue.Venue) of a venue id; a clear error for an unknown one."""
    mod = VENUE_MODULES.get(name)
    if mod is None:
        raise KeyError(f"unknown venue {name!r}; known venues: {', '.join(VENUE_MODULES)}")
    try:
        return importlib.import_module(mod).VENUE
    except ModuleNotFoundError as e:
        if e.name == mod:
            raise KeyError(f"venue {name!r} is not implemented yet; implemented: {', '.join(implemented())}") from None
        raise


def decoder_for(name: str, instruments: InstrumentMap | None = None) -> Decoder:
    """A fresh pure decoder for a venue id."""
    v = venue(name)
    return v.decoder(instruments or InstrumentMap(name))


__all__ = ["BookEvent", "Decoder", "DecodeError", "InstrumentMap", "decoder_for", "venue",
           "implemented", "VENUE_MODULES"]
