"""The feed's compiled hot path (Cython, built by setup.py on install).

Why native: a worker must take a frame from the socket, decode it, keep its books and publish
its records in about 2.5 us of CPU, and in CPython the fixed costs alone (a JSON parse into
objects, a Python call per frame, struct packing per record) are several times that.

- decoder.pyx: the base of the compiled venue decoders (the feeds/decoder.py contract in C):
  yyjson (vendor/, MIT; the parser orjson is built on) reads a frame into a document, records
  are written in place into the batch, book messages go into a C array, symbols are looked up
  in a C hash of their raw bytes.
- text.pxd: decimal text -> float64/int64 exactly as Python's float()/int() give.
- json.pxd: the yyjson declarations the decoders use.
- the venue decoders (one module per venue family) declare nothing else: endpoints, limits and
  subscriptions stay in the venue's file in feeds/.
"""
