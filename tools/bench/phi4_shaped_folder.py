#!/usr/bin/env python3
"""Turns a tiny Phi-3 model folder into a Phi-4-shaped one for `versus serve`'s benchmark.

The GGUF files `engine_vs_llama_cpp.py` writes carry a synthetic vocabulary that versus cannot
tokenize chat messages with, so they cannot be served. This keeps the tiny folder's real
tokenizer and chat template (vocabulary 1024) and replaces its config and weights with Phi-4's
width (hidden 5120, ffn 17920, 40 heads / 10 kv heads of 128) and N layers of random f16 weights.

    versus model tiny --arch phi3 /tmp/phi4-2l-hf
    python3 tools/bench/phi4_shaped_folder.py /tmp/phi4-2l-hf --layers 2   # needs numpy
    VERSUS_BENCH_MODEL=local:/tmp/phi4-2l-hf VERSUS_BENCH_QUANTIZE=q4k cargo bench -p versus --bench serve
"""
import argparse
import json
import os
import struct

import numpy as np

HIDDEN, FFN, HEADS, KV_HEADS, HEAD_DIM = 5120, 17920, 40, 10, 128


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("folder")
    parser.add_argument("--layers", type=int, default=2)
    args = parser.parse_args()
    config_path = os.path.join(args.folder, "config.json")
    with open(config_path) as f:
        config = json.load(f)
    vocab = config["vocab_size"]
    config.update(hidden_size=HIDDEN, intermediate_size=FFN, num_attention_heads=HEADS,
                  num_key_value_heads=KV_HEADS, num_hidden_layers=args.layers, torch_dtype="float16")
    with open(config_path, "w") as f:
        json.dump(config, f, indent=2)

    shapes = {"model.embed_tokens.weight": (vocab, HIDDEN), "lm_head.weight": (vocab, HIDDEN),
              "model.norm.weight": (HIDDEN,)}
    for layer in range(args.layers):
        prefix = f"model.layers.{layer}"
        shapes[f"{prefix}.input_layernorm.weight"] = (HIDDEN,)
        shapes[f"{prefix}.post_attention_layernorm.weight"] = (HIDDEN,)
        shapes[f"{prefix}.self_attn.qkv_proj.weight"] = ((HEADS + 2 * KV_HEADS) * HEAD_DIM, HIDDEN)
        shapes[f"{prefix}.self_attn.o_proj.weight"] = (HIDDEN, HEADS * HEAD_DIM)
        shapes[f"{prefix}.mlp.gate_up_proj.weight"] = (2 * FFN, HIDDEN)
        shapes[f"{prefix}.mlp.down_proj.weight"] = (HIDDEN, FFN)
    header, offset = {"__metadata__": {"format": "pt"}}, 0
    for name, shape in shapes.items():
        size = int(np.prod(shape)) * 2
        header[name] = {"dtype": "F16", "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    encoded = json.dumps(header).encode()
    encoded += b" " * (-len(encoded) % 8)
    rng = np.random.default_rng(0)
    with open(os.path.join(args.folder, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(encoded)))
        f.write(encoded)
        for name, shape in shapes.items():
            if len(shape) == 1:
                f.write(np.ones(shape, dtype=np.float16).tobytes())
            else:
                for rows in np.array_split(np.arange(shape[0]), max(1, shape[0] // 4096)):
                    block = rng.standard_normal((len(rows), shape[1]), dtype=np.float32) * 0.02
                    f.write(block.astype(np.float16).tobytes())
    print(f"wrote a Phi-4-shaped model ({args.layers} layers, vocabulary {vocab}) to {args.folder}")


if __name__ == "__main__":
    main()
