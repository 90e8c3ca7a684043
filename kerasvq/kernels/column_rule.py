"""The column rule every decoder obeys: which token each row writes at the next column.

It lives with the kernels because the persistent Pallas kernel runs it inside its loop; the
Keras loops of `kerasvq.generation.generate` import it from here, so the rule is written once.
"""

from __future__ import annotations

from typing import Any, NamedTuple


class Column(NamedTuple):
    """What `next_column` gives: the tokens written and each row's state after them."""

    tokens: Any
    """(batch,) int32: the token each row writes at the column."""
    generating: Any
    """(batch,) bool: rows that wrote a new (generated) token."""
    done: Any
    """(batch,) bool: rows that write nothing more (stopped, or at their limit)."""
    stopped: Any
    """(batch,) bool: rows that have written the end-of-sequence token."""


def next_column(position, prompt_tokens, in_prompt, proposal, done, stopped, limits, eos_id, *, stop_at_eos: bool,
                where) -> Column:
    """The column rule of batched decoding, the one every decoder of `kerasvq.generation.generate`
    follows (the Keras loops there and the persistent kernel here): a row still inside its own prompt keeps its prompt token; a row that is not done
    and is below its limit writes the proposal; any other row writes 0. A generated
    end-of-sequence token (when `stop_at_eos`) stops its row; a row whose next position
    reaches its limit is done.

    Written with operators and `where` only, so one function serves the step-by-step loop
    (NumPy: `where=np.where`), the compiled loop (`keras.ops.where`) and the persistent Pallas
    kernel (`jax.numpy.where`).

    Args:
        position: the column's index (a scalar).
        prompt_tokens, in_prompt: (batch,) the buffer's tokens at the column and whether each
            row is inside its prompt there.
        proposal: (batch,) int32, the decoder's next token for each row.
        done, stopped: (batch,) bool, each row's state before the column.
        limits: (batch,) int32, each row's end (prompt length + new tokens).
        eos_id: the end-of-sequence id (read only when `stop_at_eos`).
        where: the `where(condition, x, y)` of the caller's array library.

    Returns:
        A `Column`.
    """
    generating = ~in_prompt & ~done & (position < limits)
    tokens = where(in_prompt, prompt_tokens, where(generating, proposal, 0))
    if stop_at_eos:
        newly = generating & (tokens == eos_id)
        stopped = stopped | newly
        done = done | newly
    done = done | (position + 1 >= limits)
    return Column(tokens, generating, done, stopped)
