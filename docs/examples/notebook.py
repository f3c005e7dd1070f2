# %% [markdown]
# # zcbench from Python, notebook style
#
# Three ways in: `zcbench.evaluate` (a benchmark space, returns a DataFrame),
# a proxy written as a plain function (no registration), and `zcbench.score`
# (any `torch.nn.Module`, here Hugging Face models built from configs — no download).
# Each `# %%` cell runs as is in Jupyter/VS Code; `tests/test_docs_examples.py` runs this
# file top to bottom in CI, with small sizes (`ZCBENCH_EXAMPLE_SMALL=1`: 4 architectures, short batches).

# %%
import os

import torch

import zcbench

SMALL = os.environ.get("ZCBENCH_EXAMPLE_SMALL") == "1"
N = 4 if SMALL else 20  # architectures per call
OPTS = {"batch_size": 2, "seq_len": 32} if SMALL else {}  # else the space's defaults (GPT-2: 16 x 192)

# %% [markdown]
# ## 1. Score a benchmark space: per-architecture scores, ground truth and correlations
# Scores stay in memory (pass `results_dir=...` to store and resume them).

# %%
df = zcbench.evaluate("gpt2", ["params_nonembedding", "snip"], n_archs=N, **OPTS)
print(df[["key", "params_nonembedding", "snip", "valid_ppl"]].head())
for proxy, c in df.attrs["correlations"].items():
    print(f"{proxy}: Kendall tau {c['kendall_tau']:.3f}, Spearman rho {c['spearman_rho']:.3f} (n={c['n']})")

# %% [markdown]
# ## 2. Your own proxy, as a plain function of the engine's context
# `needs` says which passes it uses (default: forward + backward of the minibatch).

# %%
def grad_weight_ratio(ctx):
    """Sum over weight layers of ||dL/dW|| / ||W|| (an ad-hoc example, not a published proxy)."""
    total = 0.0
    for layer in ctx.weight_layers():
        g = ctx.grad(layer.weight)
        if g is not None:
            total += float(g.norm() / layer.weight.detach().norm().clamp_min(1e-12))
    return total


grad_weight_ratio.needs = {"backward"}
mine = zcbench.evaluate("gpt2", [grad_weight_ratio], n_archs=N, **OPTS)
print("grad_weight_ratio:", mine.attrs["correlations"]["grad_weight_ratio"]["kendall_tau"])

# %% [markdown]
# ## 3. Proxies on any model: a Hugging Face GPT-2 and BERT built from configs
# Roles (attention maps, head outputs, FFN activations, embeddings) are found automatically;
# a proxy needing a role the model lacks reports `n/a` in `attrs["status"]`.

# %%
from transformers import BertConfig, BertForMaskedLM, GPT2Config, GPT2LMHeadModel

torch.manual_seed(0)
gpt2 = GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=64, n_head=4, vocab_size=1000, n_positions=128))
tokens = torch.randint(0, 1000, (8, 32))
s = zcbench.score(gpt2, tokens, ["snip", "synflow", "attention_confidence", "params"])
print(s.to_dict(), s.attrs["status"])

bert = BertForMaskedLM(BertConfig(num_hidden_layers=2, hidden_size=64, num_attention_heads=4,
                                  intermediate_size=128, vocab_size=1000))
s = zcbench.score(bert, {"input_ids": tokens, "labels": tokens}, ["snip", "head_importance", "nwot"])
print(s.to_dict(), s.attrs["roles"])
