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
    KERAS_BACKEND=jax python bench/nanogpt_peer.py --tokens .gpudata/train_tokens.npy \\
        --batch-sizes 32 256 --peak-tflops 989                                       # H100

torch is optional for kerasvq (extra `peer`); this script alone needs it.
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
        def __init__(self, width, heads, dropout):
            super().__init__()
            self.c_attn = nn.Linear(width, 3 * width)
            self.c_proj = nn.Linear(width, width)
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
        def __init__(self, width, hidden, dropout):
            super().__init__()
            self.c_fc, self.gelu = nn.Linear(width, hidden), nn.GELU()
            self.c_proj, self.dropout = nn.Linear(hidden, width), nn.Dropout(dropout)

        def forward(self, x):
            return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))

    class Block(nn.Module):
        def __init__(self, width, heads, hidden, dropout):
            super().__init__()
            self.ln_1, self.ln_2 = nn.LayerNorm(width), nn.LayerNorm(width)
            self.attn = CausalSelfAttention(width, heads, dropout)
            self.mlp = MLP(width, hidden, dropout)

        def forward(self, x):
            x = x + self.attn(self.ln_1(x))
            return x + self.mlp(self.ln_2(x))

    class GPT(nn.Module):
        def __init__(self, vocab, seq_len, width, layers, heads, hidden, dropout, label_smoothing):
            super().__init__()
            self.wte, self.wpe = nn.Embedding(vocab, width), nn.Embedding(seq_len, width)
            self.drop = nn.Dropout(dropout)
            self.h = nn.ModuleList(Block(width, heads, hidden, dropout) for _ in range(layers))
            self.ln_f = nn.LayerNorm(width)
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
            return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1),
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
        x, y = batches[i % len(batches)]
        x, y = (torch.from_numpy(a.astype(np.int64)) for a in (x, y))
        if device.type == "cuda":
            return (x.pin_memory().to(device, non_blocking=True),
                    y.pin_memory().to(device, non_blocking=True))
        return x, y

    m = cfg.model
    model = gpt_modules(torch)(cfg.data.vocab_size, cfg.data.seq_len, m.d_model, m.num_layers,
                               m.num_heads, m.d_ff, m.dropout, cfg.train.label_smoothing)
    model.to(device)
    optimizer = adamw(torch, model, cfg.train, device.type)
    n_params = model.num_params()
    step_fn = torch.compile(model) if opts.compile else model
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
    args = parser.parse_args()
    if args.steps < 1 or args.warmup_steps < 1:
        parser.error("--steps and --warmup-steps must be at least 1")
    return args


def main():
    # keras is needed only for WindowDataset; keep TensorFlow out and JAX off the GPU's memory.
    os.environ.setdefault("KERAS_BACKEND", "jax")
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    args = parse_args()
    import torch

    from kerasvq.config.lm import load_lm_config
    from train_throughput import load_stream, measure_grid, print_rows

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

    cfg = load_lm_config(args.config, args.overrides)
    if cfg.model.architecture != "transformer" or cfg.model.block != "gpt" \
            or cfg.model.positions != "learned" or not cfg.model.tie_embeddings:
        raise SystemExit("error: the nanoGPT peer needs a gpt-block transformer with learned "
                         "positions and tied embeddings")
    stream = load_stream(args, cfg)
    rows = measure_grid(cfg, args, lambda batch_size: measure(
        torch, cfg, stream, batch_size, args.steps, args.warmup_steps, args))
    print(f"peer=nanoGPT torch={torch.__version__} device={args.device} dtype={args.dtype} "
          f"compile={args.compile} threads={torch.get_num_threads()} seq_len={cfg.data.seq_len} "
          f"d_model={cfg.model.d_model} layers={cfg.model.num_layers} "
          f"params={rows[0][2]['params']:,} (no positions) ln(vocab)={math.log(cfg.data.vocab_size):.3f}")
    print_rows(rows, extra_columns=[("loss@0", "first_loss")])


if __name__ == "__main__":
    main()
