"""Training throughput of nanoGPT's PyTorch GPT at a kerasvq config's shape, the peer of
`bench/train_throughput.py`.

The model and the training step follow Andrej Karpathy's nanoGPT (https://github.com/karpathy/
nanoGPT, MIT licence), re-implemented here: pre-LayerNorm GPT blocks (LayerNorm and Linear
biases as in GPT-2, fused QKV, `F.scaled_dot_product_attention(is_causal=True)` with attention
dropout while training, GELU MLP), learned positions, the token embedding tied to the output
head, N(0, 0.02) init with the residual projections at 0.02/sqrt(2·layers); AdamW with weight
decay on matrices and embeddings only (fused on CUDA), warmup + cosine learning rate set per
step, gradient clipping, bf16 autocast on CUDA, the model under `torch.compile`.

Shape, optimizer settings (learning rate, betas, weight decay, clip norm, label smoothing) and
the real token windows come from the same config and `load_stream` / `WindowDataset` as
`train_throughput.py`, with its schedule (1 warmup step, cosine over 10× the steps run).
Timing: `--warmup-steps` untimed steps (they compile) lasting at least 2 s, then `--steps`
steps between two device synchronisations. Prints one row per (batch size, dropout):
tokens/s, ms per step, MFU (6·N + 12·L·T·D FLOPs per token, N without position
embeddings), the mean loss of the timed steps and the first step's loss (≈ ln(vocab) at
nanoGPT's init).

    python bench/nanogpt_peer.py --batch-sizes 16 --steps 10 --warmup-steps 2       # CPU
    python bench/nanogpt_peer.py --shape v6-50m --tokens .gpudata/v6-50m_train_tokens.npy \\
        --batch-sizes 32 256 --peak-tflops 989                                       # H100

torch is optional for kerasvq (extra `peer`); this script alone needs it.

Why this peer ran at half the original's speed (issue 23, item 7; the numbers are in
docs/performance.md), and what differs from nanoGPT now. Found by reading both side by side and by `TORCH_LOGS=recompiles,dynamic` on CPU:

1. Recompiled with dynamic shapes (the cause). The grid measured every (batch, dropout) in
   one process, each with a new model whose `forward` has the same code object, so TorchDynamo
   reused its cache entry, failed the guards (batch 32 → 256, dropout 0.1 → 0), and on the
   recompile made the changed values symbolic ("automatic dynamic"): the batch-256 graph had a
   symbolic batch size and symbolic dropout rates, compiled without the shape specialization a
   one-shape nanoGPT process gets. Now every grid point starts from `torch._dynamo.reset()`
   and compiles with `dynamic=False`. Likely cost: most of the gap (nothing else below is big
   enough); `bench/peer_speed.py` measures it.
2. Keras and JAX were imported into the peer's process (for `WindowDataset`); JAX is now
   kept on the CPU (`JAX_PLATFORMS=cpu`), so no second CUDA runtime or cuBLAS can be loaded
   next to torch's. Likely cost: none, unless libraries clashed.
3. Host → device: one (batch, seq_len + 1) int64 array per step, pinned and copied with
   `non_blocking=True`, inputs and targets sliced on the device (nanoGPT stacks 256 slices
   per step on the host, then two pinned copies). Likely cost: none, the host work is hidden
   behind the device's step in both.
4. Loss: the config's label smoothing (0.1 in v5, as kerasvq trains) where nanoGPT has none;
   `forward` returns only the loss (nanoGPT also returns the logits, keeping them alive).
   Likely cost: small (one more sum fused into the log-softmax reduction).
5. LayerNorm: `F.layer_norm` with an optional bias (`--no-bias`, nanoGPT's `bias=False`);
   the default keeps biases, as GPT-2 and kerasvq's gpt block do. No time difference at bias on.
6. The same as nanoGPT: fused QKV Linear, `F.scaled_dot_product_attention(is_causal=True)`
   (flash) with attention dropout, exact-erf GELU, tied embeddings, torch.compile of the model
   (forward and loss) in its default mode, bf16 autocast, fused AdamW with decay on tensors of
   rank ≥ 2, `clip_grad_norm_` (no host sync), `zero_grad(set_to_none=True)`, learning rate set
   per step in the param groups, TF32 allowed, the next batch loaded while the device works,
   and no `.item()` in the timed loop (losses summed on the device, read once).
"""

from __future__ import annotations

import argparse
import math
import os
import time


def gpt_modules(torch):
    """nanoGPT's GPT, built on the given torch module (imported lazily by `main`)."""
    nn, F = torch.nn, torch.nn.functional

    class CausalSelfAttention(nn.Module):
        def __init__(self, width, heads, dropout, bias):
            super().__init__()
            self.c_attn = nn.Linear(width, 3 * width, bias=bias)
            self.c_proj = nn.Linear(width, width, bias=bias)
            self.resid_dropout = nn.Dropout(dropout)
            self.heads, self.dropout = heads, dropout

        def forward(self, x):
            b, t, c = x.shape
            q, k, v = (z.view(b, t, self.heads, c // self.heads).transpose(1, 2)
                       for z in self.c_attn(x).split(c, dim=2))
            y = F.scaled_dot_product_attention(
                q, k, v, dropout_p=self.dropout if self.training else 0.0, is_causal=True)
            return self.resid_dropout(self.c_proj(y.transpose(1, 2).contiguous().view(b, t, c)))

    class MLP(nn.Module):
        def __init__(self, width, hidden, dropout, bias):
            super().__init__()
            self.c_fc, self.gelu = nn.Linear(width, hidden, bias=bias), nn.GELU()
            self.c_proj, self.dropout = nn.Linear(hidden, width, bias=bias), nn.Dropout(dropout)

        def forward(self, x):
            return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))

    class LayerNorm(nn.Module):
        """nanoGPT's: PyTorch's LayerNorm has no bias-free option."""

        def __init__(self, width, bias):
            super().__init__()
            self.weight = nn.Parameter(torch.ones(width))
            self.bias = nn.Parameter(torch.zeros(width)) if bias else None

        def forward(self, x):
            return F.layer_norm(x, self.weight.shape, self.weight, self.bias, 1e-5)

    class Block(nn.Module):
        def __init__(self, width, heads, hidden, dropout, bias):
            super().__init__()
            self.ln_1, self.ln_2 = LayerNorm(width, bias), LayerNorm(width, bias)
            self.attn = CausalSelfAttention(width, heads, dropout, bias)
            self.mlp = MLP(width, hidden, dropout, bias)

        def forward(self, x):
            x = x + self.attn(self.ln_1(x))
            return x + self.mlp(self.ln_2(x))

    class GPT(nn.Module):
        def __init__(self, vocab, seq_len, width, layers, heads, hidden, dropout, label_smoothing,
                     bias=True):
            super().__init__()
            self.wte, self.wpe = nn.Embedding(vocab, width), nn.Embedding(seq_len, width)
            self.drop = nn.Dropout(dropout)
            self.h = nn.ModuleList(Block(width, heads, hidden, dropout, bias) for _ in range(layers))
            self.ln_f = LayerNorm(width, bias)
            self.lm_head = nn.Linear(width, vocab, bias=False)
            self.wte.weight = self.lm_head.weight  # tied embeddings
            self.label_smoothing = label_smoothing
            self.apply(self._init_weights)
            for name, p in self.named_parameters():
                if name.endswith("c_proj.weight"):
                    nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * layers))

        @staticmethod
        def _init_weights(module):
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)

        def num_params(self):
            """Parameters without the position embeddings (nanoGPT's non-embedding count)."""
            return sum(p.numel() for p in self.parameters()) - self.wpe.weight.numel()

        def forward(self, idx, targets):
            pos = torch.arange(idx.shape[1], device=idx.device)
            x = self.drop(self.wte(idx) + self.wpe(pos))
            for block in self.h:
                x = block(x)
            logits = self.lm_head(self.ln_f(x))
            return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.reshape(-1),
                                   label_smoothing=self.label_smoothing)

    return GPT


def adamw(torch, model, train_cfg, device_type):
    """nanoGPT's `configure_optimizers`: decay on tensors of rank ≥ 2, fused AdamW on CUDA."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": train_cfg.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=train_cfg.learning_rate,
                             betas=(train_cfg.beta_1, train_cfg.beta_2),
                             fused=device_type == "cuda")


def learning_rate(step, train_cfg, warmup, total):
    """nanoGPT's `get_lr`: linear warmup, then cosine down to min_lr_ratio × the peak."""
    peak = train_cfg.learning_rate
    if step < warmup:
        return peak * (step + 1) / (warmup + 1)
    ratio = min(1.0, (step - warmup) / max(1, total - warmup))
    floor = peak * train_cfg.min_lr_ratio
    return floor + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (peak - floor)


def measure(torch, cfg, stream, batch_size, steps, warmup_steps, opts):
    import contextlib

    import numpy as np

    from train_throughput import WARM_SECONDS, windows

    device = torch.device(opts.device)
    torch.manual_seed(cfg.train.seed)
    # Sized for the counted steps; the warm-up may run longer and wraps around (batch(i) below).
    batches = windows(stream, cfg, batch_size, warmup_steps + steps)

    def batch(i):
        """Window batch i on the device: one pinned (batch, seq_len + 1) copy that does not wait."""
        x, y = batches[i % len(batches)]
        w = torch.from_numpy(np.concatenate([x, y[:, -1:]], axis=1).astype(np.int64))
        if device.type == "cuda":
            w = w.pin_memory().to(device, non_blocking=True)
        return w[:, :-1], w[:, 1:]

    m = cfg.model
    model = gpt_modules(torch)(cfg.data.vocab_size, cfg.data.seq_len, m.d_model, m.num_layers,
                               m.num_heads, m.d_ff, m.dropout, cfg.train.label_smoothing,
                               bias=opts.bias)
    model.to(device)
    optimizer = adamw(torch, model, cfg.train, device.type)
    n_params = model.num_params()
    # A fresh compile per grid point, specialized to its one shape as in a nanoGPT process: the
    # models of every grid point share `forward`'s code object, so without the reset Dynamo
    # recompiles the next one with a symbolic batch size and dropout (docstring, item 1).
    torch._dynamo.reset()
    step_fn = torch.compile(model, dynamic=False) if opts.compile else model
    autocast = (torch.amp.autocast(device_type=device.type, dtype=torch.bfloat16)
                if opts.dtype == "bfloat16" else contextlib.nullcontext())
    total = 10 * (steps + warmup_steps)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    model.train()
    x, y = batch(0)
    first_loss, timed_sum, start, warm_until, step = None, None, None, None, 0
    # Untimed: `warmup_steps` steps (they compile), and at least WARM_SECONDS after the first
    # step, as in train_throughput.py, so that the GPU's clocks have ramped up.
    while start is None or step < timed_from + steps:
        if start is None and step >= warmup_steps and time.perf_counter() >= warm_until:
            sync()
            start, timed_from = time.perf_counter(), step
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, cfg.train, 1, total)
        with autocast:
            loss = step_fn(x, y)
        x, y = batch(step + 1)  # the next batch loads while the device works, as in nanoGPT
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.clipnorm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if step == 0:
            first_loss = loss.item()
            warm_until = time.perf_counter() + WARM_SECONDS
        if start is not None:  # summed on the device, read once at the end
            timed_sum = loss.detach() if timed_sum is None else timed_sum + loss.detach()
        step += 1
    mean_loss = timed_sum.item() / steps
    sync()
    seconds = time.perf_counter() - start
    T, L, D = cfg.data.seq_len, m.num_layers, m.d_model
    return {
        "tokens_per_second": steps * batch_size * T / seconds,
        "ms_per_step": 1000 * seconds / steps,
        "flops_per_token": 6.0 * n_params + 12.0 * L * T * D,
        "params": n_params,
        "final_loss": mean_loss,
        "first_loss": first_loss,
    }


def parse_args():
    from train_throughput import add_grid_arguments

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_grid_arguments(parser)
    parser.add_argument("--device", choices=["cpu", "cuda"], default=None,
                        help="default: cuda when available")
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                        help="torch.compile the model (default: on CUDA only)")
    parser.add_argument("--dtype", choices=["bfloat16", "float32"], default=None,
                        help="bfloat16 = autocast (default on CUDA); float32 (default on CPU)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--bias", action=argparse.BooleanOptionalAction, default=True,
                        help="biases in Linear and LayerNorm (nanoGPT's `bias`; GPT-2 and kerasvq: on)")
    args = parser.parse_args()
    if args.steps < 1 or args.warmup_steps < 1:
        parser.error("--steps and --warmup-steps must be at least 1")
    return args


def main():
    # keras is needed only for WindowDataset; keep TensorFlow out and JAX off the GPU's memory.
    os.environ.setdefault("KERAS_BACKEND", "jax")
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    os.environ.setdefault("JAX_PLATFORMS", "cpu")  # no JAX CUDA libraries next to torch's
    args = parse_args()
    import torch

    from train_throughput import config_from_args, load_stream, measure_grid, print_rows

    if args.device is None:
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.compile is None:
        args.compile = args.device == "cuda"
    if args.dtype is None:
        args.dtype = "bfloat16" if args.device == "cuda" else "float32"
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.backends.cuda.matmul.allow_tf32 = True  # as nanoGPT's train.py
    torch.backends.cudnn.allow_tf32 = True

    cfg = config_from_args(args)
    if cfg.model.architecture != "transformer" or cfg.model.block != "gpt" \
            or cfg.model.positions != "learned" or not cfg.model.tie_embeddings:
        raise SystemExit("error: the nanoGPT peer needs a gpt-block transformer with learned "
                         "positions and tied embeddings")
    stream = load_stream(args, cfg)
    rows = measure_grid(cfg, args, lambda batch_size: measure(
        torch, cfg, stream, batch_size, args.steps, args.warmup_steps, args))
    print(f"peer=nanoGPT torch={torch.__version__} device={args.device} dtype={args.dtype} "
          f"compile={args.compile} bias={args.bias} threads={torch.get_num_threads()} seq_len={cfg.data.seq_len} "
          f"d_model={cfg.model.d_model} layers={cfg.model.num_layers} "
          f"params={rows[0][2]['params']:,} (no positions) ln(vocab)={math.log(cfg.data.vocab_size):.3f}")
    print_rows(rows, extra_columns=[("loss@0", "first_loss")])


if __name__ == "__main__":
    main()
