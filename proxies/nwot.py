"""nwot — NASWOT: log-determinant of the activation-pattern kernel (Mellor et al.).

Formula (Mellor et al., "Neural Architecture Search without Training", ICML 2021, v2)::

    c_b   = binary code of example b: [a > 0] over every FFN activation of the network
    K     = sum_l [ c_l c_l^T + (1 - c_l)(1 - c_l)^T ]     (B x B; entry = agreeing units)
    nwot  = log |det K|

Mellor's codes are ReLU on/off patterns; for the GELU / squared-ReLU FFNs of our
spaces ``a > 0`` is exactly the sign pattern of the nonlinearity's output. Units:
the ``ffn_act`` taps (all positions of each example flattened). A model without
``ffn_act`` taps is n/a. ``slogdet`` in float64; a singular K (two examples with
identical codes) gives ``-inf`` (status ``inf``), as upstream.

See also ``activation_distance`` (Serianni & Kalita's variant of the same kernel).

Layers counted: none: the ffn_act taps' binary activation codes (no weight layer).
"""
from __future__ import annotations

import torch

from zcbench.proxy import Proxy
from zcbench.registry import register_proxy
from zcbench.proxies._common import taps_or_na


@register_proxy("nwot")
class NWOT(Proxy):
    needs = frozenset({"forward"})
    taps = frozenset({"ffn_act"})
    citation = "Mellor et al., Neural Architecture Search without Training, ICML 2021"
    layers_counted = "none: the ffn_act taps' binary activation codes (no weight layer)"
    defaults = {}

    def score(self, ctx) -> float:
        K = None
        for rec in taps_or_na(ctx, "ffn_act"):
            a = rec.activation
            # 0/1 codes; float32 products of 0/1 are exact integer counts below 2**24 units per layer
            n = a[0].numel()
            # write the comparison straight into the float codes (no bool intermediate: ~25 % faster)
            c = torch.empty(a.shape, dtype=torch.float32 if n < 2 ** 24 else torch.float64, device=a.device)
            torch.gt(a, 0, out=c)
            c = c.reshape(a.shape[0], -1)
            # row sums of 0/1 codes are exact in the codes' own dtype (< 2**24); a float64 sum is 30x slower
            r = c.sum(1).to(torch.float64)
            # c c^T + (1 - c)(1 - c)^T = 2 c c^T - r_i - r_j + n
            k = 2.0 * (c @ c.T).to(torch.float64) - r[:, None] - r[None, :] + n
            K = k if K is None else K + k
        return float(torch.linalg.slogdet(K).logabsdet)
