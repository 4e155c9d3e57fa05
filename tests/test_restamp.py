"""A venue that checks the clock in its requests (Gate.io's `time`, rejected when more than 60 s
off) gets a current time on every send, not the time the connection plan was built: a socket
that reconnects hours later resends the plan's messages."""
from __future__ import annotations

import asyncio
import time

import orjson

import feeds


class _Transport:
    is_disconnected = False

    def __init__(self):
        self.sent = []

    def send(self, kind, payload):
        self.sent.append(payload)


class _Conn:
    def __init__(self, venue):
        self.venue = venue
        self.handler = lambda payload, sock: None
        self.lane = None                     # no worker: frames would go to handler
        self.make_decoder = lambda: venue.decoder()
        self.wait_for = None


def _socket(venue_name):
    from feeds.connection import Socket
    async def make():
        s = Socket(_Conn(feeds.venue(venue_name)), 1)
        s.transport = _Transport()
        return s
    return asyncio.run(make())


def test_gateio_requests_are_restamped_as_they_are_sent():
    sock = _socket("gateio")
    stale = orjson.dumps({"time": 1_000, "channel": "spot.trades", "event": "subscribe",
                          "payload": ["BTC_USDT"]})
    sock.send(stale)
    sent = orjson.loads(sock.transport.sent[0])
    assert abs(sent["time"] - time.time()) < 5
    assert sent["channel"] == "spot.trades" and sent["payload"] == ["BTC_USDT"]


def test_venues_without_a_clock_send_their_messages_unchanged():
    sock = _socket("binance")
    msg = b'{"method":"SUBSCRIBE","params":["btcusdt@trade"],"id":1}'
    sock.send(msg)
    assert sock.transport.sent == [msg]
