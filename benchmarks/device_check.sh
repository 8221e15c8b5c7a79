#!/usr/bin/env bash
# The GPU acceptance rows of the model engines in one command, for a lent GPU machine (one H200).
#
# Here, once:   ../shared/device/fetch_wheels.sh        (fills ./.whl; git ignores it)
# Then, through the device tool, with carry [".whl"] and timeout_s 600:
#               bash benchmarks/device_check.sh
#
# It installs what that machine lacks from ./.whl (transformers as tested here, PyMuPDF), then runs
# each stage under its own deadline so a slow stage cannot take the others' results with it, and
# writes every figure to $OUT the moment it exists: rows.jsonl (one JSON line per benchmark row),
# log.txt (everything printed), sam_attention.txt, preprocess.txt, env.txt. Total: under 9 minutes.
#
# Rows (random weights at real size, bf16, letter pages at 144 dpi in each model's default mode):
#   sam_attention  folded vs dense SAM attention per view: peak memory, time, max abs difference
#   preprocess     the OCR-2 processor's pages/s on that machine's CPU with 1, 4, 8 threads
#   ocr2-64tok     DeepSeek-OCR-2, 256 pages x 64 new tokens at batch 64, 128, 256: vision + prefill
#                  per page, failed pages, peak memory beyond the weights vs the memory plan
#   ocr2-384tok    DeepSeek-OCR-2, 64 pages x 384 new tokens at batch 64 and the plan's batch:
#                  busy share, memory per page
#   ocr2-realistic DeepSeek-OCR-2, 128 pages of realistic lengths (log-normal, median 200 here,
#                  a quarter of real pages' 800 to fit the budget; cap 1,024) at batch 64 and 128:
#                  pages/s, tokens/s, decode step, slot occupancy
#   v1, deepocr    DeepSeek-OCR v1 and DeepOCR (8B), 128 pages x 64 new tokens at 64, 128, plan
# Every model row runs the continuous scheduler (the CUDA default since the first H200 run, where
# static `generate` did not finish the realistic stage; RESULTS.md has both). Limits were raised
# after that run, in which the 384-token, DeepOCR and preprocessing stages ran out of time.
# SIZE=tiny DEVICE=cpu runs the same stages on tiny models: a dry run of the script itself.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-out/device-check}"
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
PY="${PYTHON:-python3}"

if compgen -G ".whl/*.whl" > /dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH="/tmp/site:$PWD"
else
    export PYTHONPATH="$PWD"
fi
{
    date -u
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1
    "$PY" -c "import torch, transformers; print('torch', torch.__version__, '| transformers', transformers.__version__)"
    nproc
} > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"

stage() {  # stage NAME SECONDS ARGS...: one benchmark process under a hard limit
    local name=$1 limit=$2
    shift 2
    echo "== $name (limit ${limit}s)" | tee -a "$OUT/log.txt"
    # The benchmark's own --deadline skips rows that would start late; timeout is the backstop.
    timeout --signal=INT "$limit" "$PY" benchmarks/ocr2_throughput.py --size "${SIZE:-real}" --no-loop \
        --jsonl "$OUT/rows.jsonl" --deadline $((limit * 2 / 3)) "$@" 2>&1 |
        grep --line-buffered -v -E "Warning|warnings.warn|^\s*$" | tee -a "$OUT/log.txt"
    echo "== $name exit ${PIPESTATUS[0]}" | tee -a "$OUT/log.txt"
}

echo "== sam_attention" | tee -a "$OUT/log.txt"
timeout 40 "$PY" benchmarks/sam_attention.py --device "${DEVICE:-cuda}" --views 8 2>&1 | tee "$OUT/sam_attention.txt"

echo "== preprocess" | tee -a "$OUT/log.txt"
timeout 45 "$PY" benchmarks/preprocess_speed.py --models deepseek-ocr-2 --pages 16 --threads 1,4,8 \
    2>&1 | grep --line-buffered -v Warn | tee "$OUT/preprocess.txt"

stage ocr2-64tok 90 --model deepseek-ocr-2 --pages 256 --new-tokens 64 --batch-sizes 64,128,256 \
    --schedulers continuous
stage ocr2-384tok 100 --model deepseek-ocr-2 --pages 64 --new-tokens 384 --batch-sizes 64,plan \
    --schedulers continuous
stage ocr2-realistic 110 --model deepseek-ocr-2 --pages 128 --new-tokens 200 --lengths realistic \
    --batch-sizes 64,128 --schedulers continuous
stage v1 60 --model deepseek-ocr --pages 128 --new-tokens 64 --batch-sizes 64,128,plan \
    --schedulers continuous
stage deepocr 70 --model deepocr --pages 128 --new-tokens 64 --batch-sizes 64,128,plan \
    --schedulers continuous
echo "done: $(wc -l < "$OUT/rows.jsonl" 2>/dev/null || echo 0) rows in $OUT/rows.jsonl" | tee -a "$OUT/log.txt"
