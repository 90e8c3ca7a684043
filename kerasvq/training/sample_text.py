"""A callback that writes a few generated samples to TensorBoard as text at each epoch end.

Uses the TensorFlow-free `SummaryWriter`, so it works on every backend. Samples are greedy
unless a `SamplingConfig` is given; each is tagged `samples/<i>` and shows the prompt in bold.

Example:
    >>> callback = SampleTextLogger("versions/v5-transformer/logs/tensorboard/main/samples",
    ...                             tokenizer, ["O setor de infraestrutura logística brasileira debate"])
    >>> model.fit(..., callbacks=[callback])
"""

from __future__ import annotations

import keras

from kerasvq.generation.generate import generate_text
from kerasvq.generation.sampling import SamplingConfig
from kerasvq.training.tensorboard import SummaryWriter


class SampleTextLogger(keras.callbacks.Callback):
    # No per-batch hooks, so Keras's JAX trainer may keep dispatching batch ends asynchronously
    # (see `kerasvq.training.callbacks.async_safe`); epoch ends see synced variables.
    async_safe = True

    def __init__(self, logdir, tokenizer, prompts, config: SamplingConfig | None = None, every: int = 1):
        super().__init__()
        self.logdir = str(logdir)
        self.tokenizer = tokenizer
        self.prompts = list(prompts)
        self.config = config or SamplingConfig(greedy=True, max_new_tokens=40)
        self.every = every
        self._writer = None

    def on_train_begin(self, logs=None):
        self._writer = SummaryWriter(self.logdir)

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every:
            return
        for i, out in enumerate(generate_text(self.model, self.tokenizer, self.prompts, self.config)):
            self._writer.text(f"samples/{i}", f"**{out['prompt']}** {out['text']}", epoch + 1)
        self._writer.flush()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
