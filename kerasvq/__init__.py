"""kerasvq: small-scale language models, vector quantization and collaborative experts in Keras 3.

Importing the package never imports TensorFlow; every layer and model uses `keras.ops`, so
the same code runs on the TensorFlow (default) and JAX backends.
"""

import os

# TensorFlow is the default backend; respect a user's explicit choice.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"
