"""A TensorBoard event writer that needs no TensorFlow.

Keras's `TensorBoard` callback imports TensorFlow, which the JAX-only GPU machine lacks; this
writer uses only the `tensorboard` package's event-file writer and protobufs, so training logs
the same scalars, text and histograms on every backend.

Example:
    >>> writer = SummaryWriter("versions/v5-transformer/logs/tensorboard/run1/train")
    >>> writer.scalar("loss", 3.2, step=1)
    >>> writer.text("samples/0", "O setor de infraestrutura ...", step=1)
    >>> writer.histogram("codes/head0", counts, step=1)
    >>> writer.close()
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from tensorboard.compat.proto.event_pb2 import Event
from tensorboard.compat.proto.summary_pb2 import HistogramProto, Summary, SummaryMetadata
from tensorboard.compat.proto.tensor_pb2 import TensorProto
from tensorboard.compat.proto.tensor_shape_pb2 import TensorShapeProto
from tensorboard.summary.writer.event_file_writer import EventFileWriter


class SummaryWriter:
    """Writes scalar, text and histogram summaries to one TensorBoard log folder."""

    def __init__(self, logdir: str | Path):
        Path(logdir).mkdir(parents=True, exist_ok=True)
        self.logdir = str(logdir)
        self._writer = EventFileWriter(self.logdir)

    def _add(self, value: Summary.Value, step: int):
        event = Event(wall_time=time.time(), step=int(step), summary=Summary(value=[value]))
        self._writer.add_event(event)

    def scalar(self, tag: str, value: float, step: int):
        self._add(Summary.Value(tag=tag, simple_value=float(value)), step)

    def text(self, tag: str, text: str, step: int):
        metadata = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(plugin_name="text"))
        tensor = TensorProto(
            dtype="DT_STRING",
            string_val=[text.encode("utf-8")],
            tensor_shape=TensorShapeProto(dim=[TensorShapeProto.Dim(size=1)]),
        )
        self._add(Summary.Value(tag=tag, metadata=metadata, tensor=tensor), step)

    def histogram(self, tag: str, values, step: int, bins: int = 64):
        values = np.asarray(values, dtype=np.float64).ravel()
        if values.size == 0:
            return
        counts, edges = np.histogram(values, bins=bins)
        proto = HistogramProto(
            min=float(values.min()),
            max=float(values.max()),
            num=int(values.size),
            sum=float(values.sum()),
            sum_squares=float(np.dot(values, values)),
            bucket_limit=[float(e) for e in edges[1:]],
            bucket=[float(c) for c in counts],
        )
        self._add(Summary.Value(tag=tag, histo=proto), step)

    def flush(self):
        self._writer.flush()

    def close(self):
        self._writer.close()
