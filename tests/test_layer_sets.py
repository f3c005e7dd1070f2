"""Layer sets: ``layers=zcbench`` (Linear + Conv1d + Conv2d, default) vs ``layers=reference`` (Linear + Conv2d,
Abdelfattah et al.'s get_layer_metric_array and ZiCo's code), on real FlexiBERT DSC and GPT-2 networks."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from zcbench.engine import score_arch
from zcbench.proxy import LAYER_SETS, weight_layers
from zcbench.registry import create_space, get_proxy, list_proxies

WEIGHT_LAYER_PROXIES = ("grad_norm", "snip", "plain", "grasp", "synflow", "logsynflow", "fisher", "dss", "zico",
                        "eznas", "lpzero", "zerolm")


@pytest.fixture(scope="module")
def dsc(data_dir):
    space = create_space("flexibert", data_dir=data_dir)
    arch = next(a for a in sorted(space.stored(), key=lambda a: a.id)
                if all(x["operation_type"] == "DSC" for x in a.genes["encoder_layers"]))
    return space, arch


def test_every_proxy_states_its_layers_and_the_option_is_declared():
    for name in list_proxies():
        if name.startswith("rankfuse"):
            continue
        p = get_proxy(name)
        assert p.layers_counted, f"{name} has no layers_counted statement"
    for name in WEIGHT_LAYER_PROXIES:
        p = get_proxy(name)
        assert p.options["layers"] == "zcbench" and "layers" not in p.identity_options  # stored keys unchanged
        assert get_proxy(name, layers="reference").identity_options["layers"] == "reference"
    with pytest.raises(ValueError, match="valid: zcbench, reference"):
        get_proxy("snip", layers="conv")
    assert LAYER_SETS["reference"] == (nn.Linear, nn.Conv2d)


def test_reference_set_drops_exactly_the_conv1d_layers(dsc):
    """grad_norm(zcbench) - grad_norm(reference) = sum over the Conv1d layers of ||dL/dW||_F, by hand."""
    space, arch = dsc
    kw = dict(seed=0, batch_size=2, seq_len=32)
    a = score_arch(space, arch, [get_proxy("grad_norm")], **kw)["grad_norm"].value
    b = score_arch(space, arch, [get_proxy("grad_norm", layers="reference")], **kw)["grad_norm"].value
    torch.manual_seed(0)
    model = space.build(arch).eval()
    batch = space.make_batch(2, 32, 0)
    convs = [wl for wl in weight_layers(model) if isinstance(wl.module, nn.Conv1d) and wl.role != "output"]
    assert convs  # DSC networks have Conv1d weight layers
    loss = model(batch.inputs, batch.targets).loss
    grads = torch.autograd.grad(loss, [wl.weight for wl in convs], allow_unused=True)
    conv_part = sum(float(g.double().norm()) for g in grads if g is not None)
    assert conv_part > 0 and a - b == pytest.approx(conv_part, rel=1e-4)


def test_reference_changes_dsc_networks_only(dsc, data_dir):
    space, arch = dsc
    kw = dict(seed=0, batch_size=2, seq_len=32)
    for name in ("snip", "zico", "zerolm", "synflow"):
        a = score_arch(space, arch, [get_proxy(name)], **kw)[name].value
        b = score_arch(space, arch, [get_proxy(name, layers="reference")], **kw)[name].value
        assert a != b, name  # the Conv1d layers' share (small on some proxies: exact values are tested above)
    g = create_space("gpt2", data_dir=data_dir)
    small = g.by_id("config_9_j3")
    for name in ("snip", "zerolm"):
        a = score_arch(g, small, [get_proxy(name)], **kw)[name].value
        b = score_arch(g, small, [get_proxy(name, layers="reference")], **kw)[name].value
        assert a == b, name  # GPT-2 has no Conv1d: the two sets are the same layers
