#!/usr/bin/env bash
# The reproduction table of issue 4 (results/reproduction/): every zero-cost proxy of the
# catalogue except ntkt/ntsr (ETAS's, tabled in results/etas/) on all 200 GPT-2 LTS decoders
# and all 491 distinct FlexiBERT networks, seeds 0,1,2, on one CPU thread.
# CPU budget (recorded in every result's metadata): GPT-2 minibatch 4 x 192 tokens (the papers: 16),
# FlexiBERT 16 x 128 (the papers: 128). Resumable: rerun the script and finished scores are kept.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} MKL_NUM_THREADS=${MKL_NUM_THREADS:-1}
PROXIES="[activation_distance,attention_confidence,dss,eznas,fisher,flops,grad_norm,grasp,head_importance,jacob_cov,jacobian_cosine,logsynflow,lpzero,meco,nwot,params,params_nonembedding,plain,sept,snip,softmax_confidence,synaptic_diversity,synaptic_saliency,synflow,zerolm,zico]"
for seed in ${SEEDS:-0 1 2}; do
  /usr/bin/time -v python -m zcbench run proxy="$PROXIES" space=gpt2 seed=$seed batch_size=4 seq_len=192 progress=false 2>&1 \
    | grep -v "^\s\(Page size\|Socket\|Signals\|Swaps\|File system\|Average\|Exit status\|Minor\|Major\|Voluntary\|Involuntary\|Percent\)"
  /usr/bin/time -v python -m zcbench run proxy="$PROXIES" space=flexibert seed=$seed batch_size=16 seq_len=128 progress=false 2>&1 \
    | grep -v "^\s\(Page size\|Socket\|Signals\|Swaps\|File system\|Average\|Exit status\|Minor\|Major\|Voluntary\|Involuntary\|Percent\)"
done
python -m zcbench report --out results/report --bootstrap 200
