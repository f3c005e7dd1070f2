"""Training recipes of project-built ground-truth tables: one function per task kind.

A recipe (``conf/recipe/<name>.yaml``, documented in docs/groundtruth.md) names a
task kind, the data, and the training and evaluation settings. ``TASKS[kind]``
is ``(prepare, train)``: ``prepare(space, recipe)`` loads the data once per
build; ``train(space, arch, recipe, data, seed)`` builds the network under
``torch.manual_seed(seed)``, trains it with the seeded data order and returns
``{metric: value, ...}``. The same (arch, seed, recipe) gives the same numbers
on the same machine with the same thread count.

Kinds:

* ``lm`` — next-token language modelling: random windows of ``train.seq_len + 1``
  tokens of the ``data.train_split`` token stream (the space's own tokenizer,
  ``zcbench.text``), evaluated on ``eval.windows`` contiguous, non-overlapping
  windows from the start of ``data.eval_split``: ``<split>_ppl`` = exp(mean NLL).
* ``image_classification`` — cross-entropy on a labelled image set, evaluated as
  top-1 accuracy (in %) and mean loss on its held-out split. Datasets:
  ``sklearn_digits`` (scikit-learn's bundled 1,797 8x8 handwritten digits with a
  seeded stratified split) or ``torchvision`` (``name: CIFAR10``, ``root: ...``;
  any torchvision dataset taking ``root, train, download``).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


# ---------------------------------------------------------------------------
# shared training loop
# ---------------------------------------------------------------------------
def make_optimizer(model: torch.nn.Module, tc: dict):
    """AdamW (or SGD with momentum) with linear warm-up then cosine decay to ``min_lr_ratio * lr``."""
    params = [p for p in model.parameters() if p.requires_grad]
    name = str(tc.get("optimizer", "adamw")).lower()
    if name == "adamw":
        opt = torch.optim.AdamW(params, lr=tc["lr"], betas=tuple(tc.get("betas", (0.9, 0.999))),
                                weight_decay=tc.get("weight_decay", 0.0))
    elif name == "sgd":
        opt = torch.optim.SGD(params, lr=tc["lr"], momentum=tc.get("momentum", 0.9),
                              weight_decay=tc.get("weight_decay", 0.0), nesterov=True)
    else:
        raise ValueError(f"recipe: unknown optimizer {name!r}; valid: adamw, sgd")
    steps, warm = int(tc["steps"]), int(tc.get("warmup_steps", 0))
    floor = float(tc.get("min_lr_ratio", 0.0))
    schedule = str(tc.get("schedule", "cosine"))
    if schedule not in ("cosine", "constant"):
        raise ValueError(f"recipe: unknown schedule {schedule!r}; valid: cosine, constant")

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        if schedule == "constant":
            return 1.0
        t = (step - warm) / max(1, steps - warm)
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))

    return opt, torch.optim.lr_scheduler.LambdaLR(opt, factor)


def train_loop(model: torch.nn.Module, next_batch, tc: dict) -> dict:
    """``tc['steps']`` optimizer steps on ``next_batch(step) -> (inputs, targets)``.
    Returns the mean training loss of the last 10% of steps (NaN once the loss diverges)."""
    opt, sched = make_optimizer(model, tc)
    clip = tc.get("grad_clip")
    steps = int(tc["steps"])
    tail = []
    model.train()
    for step in range(steps):
        x, y = next_batch(step)
        loss = model(x, y).loss
        if not torch.isfinite(loss):
            return {"train_loss": math.nan, "diverged_at": step}
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), float(clip))
        opt.step()
        sched.step()
        if step >= steps - max(1, steps // 10):
            tail.append(loss.item())
    model.eval()
    return {"train_loss": sum(tail) / len(tail)}


# ---------------------------------------------------------------------------
# language modelling
# ---------------------------------------------------------------------------
def prepare_lm(space, recipe: dict) -> dict:
    from zcbench.text import token_stream

    d = recipe["data"]
    n_token = int(space.FIXED["n_token"]) if hasattr(space, "FIXED") else int(d["vocab_size"])
    corpus, kind = d.get("corpus", "wikitext-2"), d.get("tokenizer", "bpe")
    train, prov = token_stream(kind, n_token, space.data_dir, split=d["train_split"], corpus=corpus)
    test, _ = token_stream(kind, n_token, space.data_dir, split=d["eval_split"], corpus=corpus)
    ev = recipe["eval"]
    T, W = int(ev.get("seq_len", recipe["train"]["seq_len"])), int(ev["windows"])
    if test.numel() < W * (T + 1):
        raise ValueError(f"recipe: eval split has {test.numel()} tokens, fewer than windows*(seq_len+1)={W * (T + 1)}")
    return {"train": train, "eval": test[: W * (T + 1)].view(W, T + 1), "tokenizer": prov["tokenizer"]}


def train_lm(space, arch, recipe: dict, data: dict, seed: int) -> dict:
    from zcbench.text import lm_windows

    tc = recipe["train"]
    B, T = int(tc["batch_size"]), int(tc["seq_len"])
    torch.manual_seed(seed)
    model = space.build(arch)

    def next_batch(step):
        w = lm_windows(data["train"], B, T, seed * 1_000_003 + step)
        return w[:, :-1].contiguous(), w[:, 1:].contiguous()

    out = train_loop(model, next_batch, tc)
    if math.isnan(out["train_loss"]):
        loss = math.nan
    else:
        with torch.no_grad():
            losses = [float(model(w[:, :-1].contiguous(), w[:, 1:].contiguous()).loss)
                      for w in data["eval"].split(int(recipe["eval"].get("batch_size", 64)))]
        sizes = [len(w) for w in data["eval"].split(int(recipe["eval"].get("batch_size", 64)))]
        loss = sum(l * n for l, n in zip(losses, sizes)) / sum(sizes)
    split = recipe["data"]["eval_split"]
    return {f"{split}_ppl": math.exp(loss) if math.isfinite(loss) else math.nan, f"{split}_loss": loss, **out}


# ---------------------------------------------------------------------------
# image classification
# ---------------------------------------------------------------------------
def _normalise(x: torch.Tensor, img_size: int) -> torch.Tensor:
    """(N, C, H, W) in [0, 1] -> bilinear resize to img_size, 3 channels, ImageNet mean/std."""
    if x.shape[-1] != img_size or x.shape[-2] != img_size:
        x = F.interpolate(x, size=(img_size, img_size), mode="bilinear", align_corners=False)
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return ((x - mean) / std).contiguous()


def prepare_image(space, recipe: dict) -> dict:
    d = recipe["data"]
    img = int(space.img_size)
    if d["dataset"] == "sklearn_digits":
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        dig = load_digits()
        x = torch.as_tensor(dig.images, dtype=torch.float32)[:, None] / 16.0
        y = torch.as_tensor(dig.target, dtype=torch.long)
        tr, te = train_test_split(list(range(len(y))), test_size=float(d["test_fraction"]),
                                  random_state=int(d["split_seed"]), stratify=y.numpy())
        tr, te = torch.tensor(tr), torch.tensor(te)
        return {"x_train": _normalise(x[tr], img), "y_train": y[tr], "x_test": _normalise(x[te], img),
                "y_test": y[te], "n_classes": 10}
    if d["dataset"] == "torchvision":
        # Not exercised on the machine the shipped tables were built on (no torchvision there).
        import numpy as np
        import torchvision

        cls = getattr(torchvision.datasets, d["name"])

        def load(train: bool):
            ds = cls(root=d["root"], train=train, download=bool(d.get("download", False)))
            x = torch.as_tensor(np.asarray(ds.data), dtype=torch.float32) / 255.0
            x = x.permute(0, 3, 1, 2) if x.ndim == 4 else x[:, None]
            return _normalise(x, img), torch.as_tensor(np.asarray(ds.targets), dtype=torch.long)

        (xa, ya), (xb, yb) = load(True), load(False)
        return {"x_train": xa, "y_train": ya, "x_test": xb, "y_test": yb, "n_classes": int(ya.max()) + 1}
    raise ValueError(f"recipe: unknown image dataset {d['dataset']!r}; valid: sklearn_digits, torchvision")


def train_image(space, arch, recipe: dict, data: dict, seed: int) -> dict:
    tc = recipe["train"]
    B = int(tc["batch_size"])
    if space.num_classes < data["n_classes"]:
        raise ValueError(f"recipe: space has num_classes={space.num_classes} < the dataset's {data['n_classes']}")
    torch.manual_seed(seed)
    model = space.build(arch)
    x, y = data["x_train"], data["y_train"]
    g = torch.Generator().manual_seed(seed)
    order: list[torch.Tensor] = []

    def next_batch(step):  # epochs of seeded permutations, last partial batch dropped
        per_epoch = len(x) // B
        if step % per_epoch == 0:
            order[:] = [torch.randperm(len(x), generator=g)]
        idx = order[0][(step % per_epoch) * B: (step % per_epoch + 1) * B]
        return x[idx], y[idx]

    out = train_loop(model, next_batch, tc)
    correct, loss_sum = 0, 0.0
    if not math.isnan(out["train_loss"]):
        with torch.no_grad():
            for xb, yb in zip(data["x_test"].split(256), data["y_test"].split(256)):
                o = model(xb, yb)
                correct += int((o.logits.argmax(-1) == yb).sum())
                loss_sum += float(o.loss) * len(yb)
    n = len(data["y_test"])
    top1 = 100.0 * correct / n if not math.isnan(out["train_loss"]) else math.nan
    return {"top1": top1, "test_loss": loss_sum / n if not math.isnan(out["train_loss"]) else math.nan, **out}


TASKS = {"lm": (prepare_lm, train_lm), "image_classification": (prepare_image, train_image)}
