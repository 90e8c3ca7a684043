"""Callbacks shared by the run tests: a simulated kill at the start of an epoch."""

import keras


class CrashAtEpoch(keras.callbacks.Callback):
    """Raises KeyboardInterrupt when epoch `epoch` (0-based) begins, as a kill there would
    stop the run: the epochs before it are checkpointed, none after."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            raise KeyboardInterrupt("simulated kill")
