#!/usr/bin/env bash
# The recipe of the shipped default models (models/shakespeare-mdm and its AR
# twin models/shakespeare-ar): a BPE tokenizer trained on the first 90% of
# tiny Shakespeare, then a masked-diffusion model and an autoregressive model
# of the same shape trained with the same compute (same steps, batch and
# context). Needs ../shared/data; takes about half an hour on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
DLLM=./build/dllm
CORPUS=../shared/data/tinyshakespeare/input.txt
WORK=${WORK:-/tmp/dllm-shipped}
mkdir -p "$WORK/tok"
# The training split: `dllm data prepare` keeps the last 10% for validation,
# cut at the first line start after 90% of the bytes (1,003,856 bytes here).
head -c 1003856 "$CORPUS" > "$WORK/train_part.txt"
$DLLM tokenizer train --vocab-size 2048 --special "<|endoftext|>,<|mask|>" \
  "$WORK/train_part.txt" -o "$WORK/tok/tokenizer.json"
$DLLM data prepare --tokenizer "$WORK/tok" "$CORPUS" -o "$WORK/data"
SHAPE="--layers 4 --d-model 256 --heads 4 --ffn 704 --batch 32 --context 128 --steps 1500
       --lr 2e-3 --min-lr 2e-4 --warmup 100 --eval-every 250 --eval-windows 32 --ckpt-every 250 --seed 1"
$DLLM train --data "$WORK/data" -o "$WORK/mdm" --objective mdm $SHAPE
$DLLM train --data "$WORK/data" -o "$WORK/ar" --objective ar $SHAPE
# Final numbers on the whole validation split, in the same units.
$DLLM eval loss -m "$WORK/mdm" --data "$WORK/data" --windows 256 --grid 16 --draws 4
$DLLM eval loss -m "$WORK/ar" --data "$WORK/data" --windows 256
for m in mdm ar; do
  mkdir -p models/shakespeare-$m
  cp "$WORK/$m"/{config.json,model.safetensors,tokenizer.json} models/shakespeare-$m/
  cp "$WORK/$m/train_log.csv" models/shakespeare-$m/
done

# The block-diffusion model (models/shakespeare-bd), the quick start's default:
# the AR twin adapted to block diffusion (BD3-LM objective, blocks of 4),
# 200 steps, then 500 more from there (about 28 minutes on 2 shared cores).
$DLLM train --data "$WORK/data" -o "$WORK/bd4" --objective bd --block-size 4 \
  --init-from "$WORK/ar" --batch 16 --context 128 --steps 200 --lr 5e-4 --min-lr 5e-5 --warmup 20
$DLLM train --data "$WORK/data" -o "$WORK/bd" --objective bd --init-from "$WORK/bd4" \
  --batch 16 --context 128 --steps 500 --lr 4e-4 --min-lr 4e-5 --warmup 20 \
  --eval-every 100 --eval-windows 16 --ckpt-every 100
$DLLM eval loss -m "$WORK/bd" --data "$WORK/data" --windows 256 --grid 16 --draws 4
mkdir -p models/shakespeare-bd
cp "$WORK/bd"/{config.json,model.safetensors,tokenizer.json} models/shakespeare-bd/
