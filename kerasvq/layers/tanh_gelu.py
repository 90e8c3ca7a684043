"""GPT-2's tanh GELU whose backward pass recomputes the derivative from the input.

Autodiff of `ops.gelu(x, approximate=True)` keeps intermediates of the forward pass (on JAX
a second (tokens, d_ff) tensor besides the output) for the backward pass to read. Here the
backward pass evaluates GELU'(x) from `x` itself, which the FFN's matmul already keeps, so the
forward kernel writes only its output, and XLA then fuses bias and GELU into the cuBLAS
matmul's epilogue, which makes the v5 training step faster on a GPU; on a CPU (TensorFlow,
unfused) the recomputation costs a little (docs/performance.md). The derivative is computed
in float32.

Example:
    >>> hidden = tanh_gelu(keras.random.normal((2, 16, 1024)))        # == ops.gelu(x, True)
"""

import math

from keras import ops

SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
CUBIC = 0.044715


def tanh_gelu_derivative(x):
    """d/dx of 0.5·x·(1 + tanh(u)), u = √(2/π)·(x + 0.044715·x³), in float32.

    Written with s = sigmoid(2u) = (1 + tanh u) / 2 and 1 − tanh²u = 4·s·(1 − s): the plain
    `1 − tanh²` cancels to a few correct digits in the negative tail.
    """
    x = ops.cast(x, "float32")
    s = ops.sigmoid(2.0 * SQRT_2_OVER_PI * (x + CUBIC * x * x * x))
    return s + 2.0 * x * s * (1.0 - s) * SQRT_2_OVER_PI * (1.0 + 3.0 * CUBIC * x * x)


def tanh_gelu(x):
    """`ops.gelu(x, approximate=True)`, storing only `x` for the backward pass."""

    @ops.custom_gradient
    def gelu(x):
        def backward(*args, upstream=None):
            if upstream is None:  # JAX passes the upstream gradient positionally
                (upstream,) = args
            return ops.cast(ops.cast(upstream, "float32") * tanh_gelu_derivative(x), x.dtype)

        return ops.gelu(x, approximate=True), backward

    return gelu(x)
