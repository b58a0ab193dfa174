"""
Train the GPT of model.py on a character corpus, shaped like nanoGPT's train.py.

This is the program under evolution. It runs standalone (python seed/train.py,
reading data/shakespeare_char/ and writing out/) and under the evaluator, which
sets these environment variables:

  DARWIN_DATA          folder with train.bin (uint16 ids) and meta.json; no held-out data
  DARWIN_OUT           the only writable folder: model.pt and train.json go there
  DARWIN_MAX_ITERS     stop after this many iterations
  DARWIN_TIME_BUDGET_S finish (saved) this many seconds after the process started
  DARWIN_SEED          seed for init and batch sampling (runs are deterministic on CPU)
  DARWIN_DEVICE        cpu | cuda | auto
  DARWIN_PRESET        tiny | paper | nanogpt (rows of PRESETS below)
  DARWIN_THREADS       torch CPU threads (torch's default when unset)
  DARWIN_COMPILE       1 to torch.compile the model
  DARWIN_LOG_INTERVAL  print a log line every this many iterations (default 10)
  DARWIN_CURVE         budget fractions (e.g. 0.25,0.5,0.75) at which to save the model to
                       DARWIN_OUT/checkpoint.pt: the evaluator scores each for the learning curve

It imports only torch, numpy and the standard library, never darwin_bot.
"""

import json
import math
import os
import resource
import sys
import time
from collections import deque
from contextlib import nullcontext

t_process = time.perf_counter()  # a wall budget counts from here: the harness clocks the process

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.dont_write_bytecode = True  # importing model.py must not write seed/__pycache__
from model import GPT, GPTConfig  # noqa: E402 (after the line above)

# -----------------------------------------------------------------------------
# presets: the scale of a run. Change a model's shape by editing its row.
PRESETS = {
    # a model that trains 100 iterations in seconds on a laptop CPU
    "tiny": dict(n_layer=4, n_head=4, n_embd=128, block_size=64, batch_size=12,
                 dropout=0.0, max_iters=100, warmup_iters=10),
    # nanoGPT's Shakespeare-char model on a short budget of 100 iterations
    "paper": dict(n_layer=6, n_head=6, n_embd=384, block_size=256, batch_size=64,
                  dropout=0.2, max_iters=100, warmup_iters=10),
    # nanoGPT's own train_shakespeare_char run
    "nanogpt": dict(n_layer=6, n_head=6, n_embd=384, block_size=256, batch_size=64,
                    dropout=0.2, max_iters=5000, warmup_iters=100),
}  # fmt: skip
preset = os.environ.get("DARWIN_PRESET", "tiny")
if preset not in PRESETS:
    sys.exit(f"train.py: unknown DARWIN_PRESET {preset!r}; choose one of {', '.join(PRESETS)}")
P = PRESETS[preset]

# I/O
data_dir = os.environ.get("DARWIN_DATA", os.path.join("data", "shakespeare_char"))
out_dir = os.environ.get("DARWIN_OUT", "out")
log_interval = int(os.environ.get("DARWIN_LOG_INTERVAL", "10"))  # iterations per log line
if log_interval < 1:
    sys.exit(f"train.py: DARWIN_LOG_INTERVAL must be at least 1, got {log_interval}")
# fractions of the budget still to save a checkpoint at, in order (the evaluator's curve)
curve_points = [float(f) for f in os.environ.get("DARWIN_CURVE", "").split(",") if f.strip()]
# model
n_layer = P["n_layer"]  # transformer blocks
n_head = P["n_head"]  # attention heads
n_embd = P["n_embd"]  # residual stream width
block_size = P["block_size"]  # context length in tokens
dropout = P["dropout"]  # 0 for short runs; 0.2 helps the 10M model not overfit
bias = False  # no biases in Linear/LayerNorm: a little faster, as good
# batches
batch_size = P["batch_size"]  # sequences per micro-batch
gradient_accumulation_steps = 1  # micro-batches per optimizer step
# AdamW
learning_rate = 1e-3  # peak learning rate (small models can take a large one)
weight_decay = 0.1  # applied to matrices only (see configure_optimizers)
beta1 = 0.9
beta2 = 0.99  # a bit below 0.999 because few tokens pass per iteration
grad_clip = 1.0  # clip the global gradient norm at this value; 0 disables
# learning rate schedule: linear warmup, then cosine decay to min_lr
max_iters = int(os.environ.get("DARWIN_MAX_ITERS", P["max_iters"]))
time_budget_s = float(os.environ.get("DARWIN_TIME_BUDGET_S", "0"))  # 0: no wall budget
if time_budget_s > 0 and "DARWIN_MAX_ITERS" not in os.environ:
    max_iters = 10**9  # the wall budget alone decides when to stop
warmup_iters = P["warmup_iters"]
min_lr = learning_rate / 10  # floor of the cosine, as in Chinchilla
# system
seed = int(os.environ.get("DARWIN_SEED", "1337"))
device = os.environ.get("DARWIN_DEVICE", "auto")  # cpu | cuda | auto
if device == "auto":
    device = "cuda" if torch.cuda.is_available() else "cpu"
compile_model = os.environ.get("DARWIN_COMPILE", "0") == "1"  # torch.compile: faster, slow start
if "DARWIN_THREADS" in os.environ:
    torch.set_num_threads(int(os.environ["DARWIN_THREADS"]))
# -----------------------------------------------------------------------------

torch.manual_seed(seed)
device_type = "cuda" if device.startswith("cuda") else "cpu"
if device_type == "cuda":
    torch.backends.cuda.matmul.allow_tf32 = True  # TF32 matmuls where bf16 does not apply
    torch.backends.cudnn.allow_tf32 = True
use_bf16 = device_type == "cuda" and torch.cuda.is_bf16_supported()
autocast = torch.autocast(device_type, dtype=torch.bfloat16) if use_bf16 else nullcontext()

# data: the whole token stream lives on the device; a batch is a gather of random windows
with open(os.path.join(data_dir, "meta.json")) as f:
    vocab_size = json.load(f)["vocab_size"]
train_ids = np.fromfile(os.path.join(data_dir, "train.bin"), dtype=np.uint16)
if len(train_ids) <= block_size + 1:
    sys.exit(f"train.py: {len(train_ids)} training tokens is too few for block_size {block_size}")
train_data = torch.from_numpy(train_ids.astype(np.int64)).to(device)  # (N,)
batch_gen = torch.Generator(device="cpu").manual_seed(seed)
offsets = torch.arange(block_size + 1)  # (T+1,)


def get_batch():
    """Random windows of the training stream: x (B, T) and y (B, T), y shifted by one."""
    ix = torch.randint(len(train_data) - block_size, (batch_size,), generator=batch_gen)  # (B,)
    chunk = train_data[(ix[:, None] + offsets).to(train_data.device)]  # (B, T+1)
    return chunk[:, :-1], chunk[:, 1:]


def get_lr(it, progress):
    """Linear warmup over warmup_iters, then cosine from learning_rate to min_lr.

    progress in [0, 1] is how much of the run is done after warmup (iterations, or
    the wall budget when one is set), so the schedule fits either kind of budget.
    """
    if it < warmup_iters:
        return learning_rate * (it + 1) / (warmup_iters + 1)
    coeff = 0.5 * (1.0 + math.cos(math.pi * min(max(progress, 0.0), 1.0)))  # 1 -> 0
    return min_lr + coeff * (learning_rate - min_lr)


def peak_flops():
    """A rough peak FLOP/s of this device, for the MFU in the log only (the evaluator has its own)."""
    if device_type == "cuda":
        name = torch.cuda.get_device_name()
        table = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L4": 121e12, "A10": 125e12}
        return next((v for k, v in table.items() if k in name), 100e12)
    # CPU guess: threads x 3 GHz x 32 fp32 FLOP/cycle (two AVX2 FMA units)
    return torch.get_num_threads() * 3e9 * 32


def save_model(path):
    """The weights and their shape, written whole: elsewhere first, then renamed over ``path``."""
    os.makedirs(out_dir, exist_ok=True)
    torch.save({"model_args": model_args, "model": raw_model.state_dict()}, path + ".tmp")
    os.replace(path + ".tmp", path)


def budget_done(it):
    """How much of the budget is spent after ``it`` iterations: iterations, or the wall budget."""
    if time_budget_s > 0:
        return (time.perf_counter() - t_process) / time_budget_s
    return it / max_iters


# model and optimizer
model_args = dict(n_layer=n_layer, n_head=n_head, n_embd=n_embd, block_size=block_size,
                  vocab_size=vocab_size, dropout=dropout, bias=bias)  # fmt: skip
model = GPT(GPTConfig(**model_args)).to(device)
optimizer = model.configure_optimizers(weight_decay, learning_rate, (beta1, beta2), device_type)
raw_model = model
if compile_model:
    model = torch.compile(model)
flops_per_token = raw_model.flops_per_token(block_size)
tokens_per_iter = gradient_accumulation_steps * batch_size * block_size
print(f"preset {preset}: {raw_model.num_params() / 1e6:.2f}M parameters on {device}, "
      f"{tokens_per_iter} tokens per iteration", flush=True)  # fmt: skip

# training loop
recent_losses = deque(maxlen=10)  # final_train_loss is their mean: less noisy than one batch
X, Y = get_batch()
t0 = time.perf_counter()
t_log = t0
it = 0
t_stop = t_process + time_budget_s - 1.0  # leave a second to save; the harness kills late runs
t_step = 0.0  # the last iteration's time: stop before one more would pass t_stop
while it < max_iters:
    now = time.perf_counter()
    if time_budget_s > 0 and it > 0 and now + t_step >= t_stop:
        break
    if time_budget_s > 0:
        progress = (now - t0) / max(t_stop - t0, 1e-9)
    else:
        progress = (it - warmup_iters) / max(1, max_iters - warmup_iters)
    lr = get_lr(it, progress)
    for group in optimizer.param_groups:
        group["lr"] = lr
    for _ in range(gradient_accumulation_steps):
        with autocast:
            _, loss = model(X, Y)
            loss = loss / gradient_accumulation_steps  # the mean over micro-batches
        X, Y = get_batch()  # sample the next batch while the device works
        loss.backward()
    if grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    recent_losses.append(loss.detach() * gradient_accumulation_steps)
    it += 1
    t_step = time.perf_counter() - now
    if curve_points and budget_done(it) >= curve_points[0]:
        while curve_points and budget_done(it) >= curve_points[0]:
            curve_points.pop(0)  # one checkpoint for every fraction passed
        save_model(os.path.join(out_dir, "checkpoint.pt"))
    if it % log_interval == 0 or it == max_iters:
        loss_now = recent_losses[-1].item()  # .item() waits for the device
        now = time.perf_counter()
        iters_done = log_interval if it % log_interval == 0 else it % log_interval
        dt = max(now - t_log, 1e-9) / iters_done  # seconds per iteration since the last line
        tok_s = tokens_per_iter / dt
        mfu = tok_s * flops_per_token / peak_flops()
        print(f"iter {it}: loss {loss_now:.4f}, time {1000 * dt:.2f}ms, lr {lr:.2e}, "
              f"{tok_s:,.0f} tok/s, mfu {100 * mfu:.2f}%", flush=True)  # fmt: skip
        t_log = now
if device_type == "cuda":
    torch.cuda.synchronize()
train_seconds = time.perf_counter() - t0

# outputs: the weights and what the run measured about itself
if device_type == "cuda":
    peak_mem_mb = torch.cuda.max_memory_allocated() / 2**20
else:
    peak_mem_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
tokens_seen = it * tokens_per_iter
final_loss = float(torch.stack(list(recent_losses)).mean()) if recent_losses else float("nan")
save_model(os.path.join(out_dir, "model.pt"))
report = {
    "preset": preset,
    "iterations": it,
    "tokens_seen": tokens_seen,
    "train_seconds": train_seconds,
    "tokens_per_s": tokens_seen / train_seconds if train_seconds > 0 else 0.0,
    "final_train_loss": final_loss,
    "device": device,
    "device_name": torch.cuda.get_device_name() if device_type == "cuda" else "cpu",
    "num_params": raw_model.num_params(),
    "flops_per_token": flops_per_token,
    "peak_mem_mb": peak_mem_mb,
    "torch": torch.__version__,
    "config": dict(
        model_args, batch_size=batch_size, gradient_accumulation_steps=gradient_accumulation_steps,
        learning_rate=learning_rate, min_lr=min_lr, weight_decay=weight_decay, beta1=beta1,
        beta2=beta2, grad_clip=grad_clip, warmup_iters=warmup_iters, max_iters=max_iters,
        time_budget_s=time_budget_s, seed=seed, compile=compile_model, bf16=use_bf16,
        threads=torch.get_num_threads(),
    ),
}  # fmt: skip
with open(os.path.join(out_dir, "train.json"), "w") as f:
    json.dump(report, f, indent=2)
print(f"done: {it} iterations, {report['tokens_per_s']:,.0f} tok/s, "
      f"final train loss {final_loss:.4f}, wrote {out_dir}/model.pt", flush=True)  # fmt: skip
