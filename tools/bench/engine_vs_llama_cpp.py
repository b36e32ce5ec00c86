#!/usr/bin/env python3
"""versus's local engine against llama.cpp on the same GGUF files, side by side in one run.

Writes a Phi-4-shaped GGUF with random weights (full width and vocabulary, `--layers` of its 40
layers) in F16, quantizes it with llama.cpp's own quantizer to Q8_0 and Q4_K (every 2-D tensor
Q4_K, output and embedding included, so the file is one type), and with `--types` to the
Q4_K_M and Q5_K_M mixes people download (llama.cpp's choice of Q6_K tensors among them), then,
for each file and round,
interleaved: versus (`cargo bench -p versus-engine --bench engine -- --gguf FILE`, which also
measures decode with candle's matmul alone) and llama.cpp (llama-cpp-python, in this process):
load seconds, prefill tokens/s over a 128-token prompt (median of three) and decode tokens/s over 32 greedy
steps, on `--threads` threads, and decode as a share of the memory bandwidth the versus benchmark
measures in the same process; then the aggregate decode tokens/s of 1, 4, 8 and 16 sequences
decoded together (versus's batched forward pass; llama.cpp's own multi-sequence batches, one
`llama_decode` per step with a token of each sequence); with `--context N`, decode tokens/s over
100 greedy steps after N positions of context (how attention over a long KV cache weighs).
Prints medians and the ratios as Markdown tables.

Set-up (about 7 minutes to build llama.cpp from source on two cores):
    python3 -m venv /tmp/llvenv
    /tmp/llvenv/bin/pip install numpy gguf llama-cpp-python==0.3.36
    /tmp/llvenv/bin/python tools/bench/engine_vs_llama_cpp.py --dir /tmp/gguf-bench

The files take about 6 GB in `--dir`, and 2.4 GB more with the two mixes (kept between runs;
delete them to regenerate).
"""

import argparse
import ctypes
import os
import re
import statistics
import subprocess
import sys
import time

import numpy as np
import gguf
import llama_cpp

HIDDEN, FFN, HEADS, KV_HEADS, HEAD_DIM, VOCAB = 5120, 17920, 40, 10, 128, 100352
BOS, EOS = 100257, 100265
PROMPT = [(i * 7919) % 100000 for i in range(128)]
DECODE_STEPS = 32
PREFILL_RUNS = 3
GGML_TYPE_Q4_K = 12
BATCHES = [1, 4, 8, 16]
BATCH_PROMPT = 16
BATCH_STEPS = 8


def write_f16(path, layers):
    """A Phi-4-shaped phi3 GGUF with random f16 weights and a synthetic byte-level vocabulary."""
    rng = np.random.default_rng(0)
    writer = gguf.GGUFWriter(path, "phi3")
    writer.add_block_count(layers)
    writer.add_context_length(16384)
    writer.add_embedding_length(HIDDEN)
    writer.add_feed_forward_length(FFN)
    writer.add_head_count(HEADS)
    writer.add_head_count_kv(KV_HEADS)
    writer.add_rope_dimension_count(HEAD_DIM)
    writer.add_rope_freq_base(250000.0)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("default")
    tokens = [f"t{i}" for i in range(VOCAB)]
    writer.add_token_list(tokens)
    writer.add_token_types([gguf.TokenType.NORMAL] * VOCAB)
    writer.add_token_merges(["t 1", "t 2"])
    writer.add_bos_token_id(BOS)
    writer.add_eos_token_id(EOS)

    def matrix(rows, cols, scale=0.02):
        return (rng.standard_normal((rows, cols), dtype=np.float32) * scale).astype(np.float16)

    def norm():
        return np.ones(HIDDEN, dtype=np.float32)

    writer.add_tensor("token_embd.weight", matrix(VOCAB, HIDDEN))
    for layer in range(layers):
        writer.add_tensor(f"blk.{layer}.attn_norm.weight", norm())
        writer.add_tensor(f"blk.{layer}.attn_qkv.weight", matrix((HEADS + 2 * KV_HEADS) * HEAD_DIM, HIDDEN))
        writer.add_tensor(f"blk.{layer}.attn_output.weight", matrix(HIDDEN, HEADS * HEAD_DIM))
        writer.add_tensor(f"blk.{layer}.ffn_norm.weight", norm())
        writer.add_tensor(f"blk.{layer}.ffn_up.weight", matrix(2 * FFN, HIDDEN))
        writer.add_tensor(f"blk.{layer}.ffn_down.weight", matrix(HIDDEN, FFN))
    writer.add_tensor("output_norm.weight", norm())
    writer.add_tensor("output.weight", matrix(VOCAB, HIDDEN))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def quantize(source, target, ftype, threads, pure=True):
    """llama.cpp's quantizer; pure Q4_K files get Q4_K output and embedding matrices too."""
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    params.nthread = threads
    # Pure: every tensor the requested type (no per-tensor bumps to Q5_K/Q6_K), one type per
    # file. The _M mixes are what people download: llama.cpp's own choice of Q6_K tensors.
    params.pure = pure
    if ftype == llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_K_S:
        params.output_tensor_type = GGML_TYPE_Q4_K
        params.token_embedding_type = GGML_TYPE_Q4_K
    if llama_cpp.llama_model_quantize(source.encode(), target.encode(), ctypes.byref(params)) != 0:
        sys.exit(f"llama.cpp could not quantize {source} to {target}")


def tensor_types(path):
    """How many tensors of each type a GGUF holds, e.g. {'Q4_K': 10, 'F32': 5}."""
    counts = {}
    for tensor in gguf.GGUFReader(path).tensors:
        name = tensor.tensor_type.name
        counts[name] = counts.get(name, 0) + 1
    return counts


def greedy_steps(llm, steps):
    """Tokens/s of `steps` greedy decode steps from where `llm` stands."""
    started = time.perf_counter()
    for _ in range(steps):
        token = int(np.argmax(llm.scores[llm.n_tokens - 1]))
        llm.eval([token])
    return steps / (time.perf_counter() - started)


def llama_cpp_once(path, threads):
    started = time.perf_counter()
    llm = llama_cpp.Llama(model_path=path, n_threads=threads, n_threads_batch=threads,
                          n_ctx=512, n_batch=512, verbose=False)
    load_s = time.perf_counter() - started
    # The median of PREFILL_RUNS prefills of the prompt from an empty cache, as versus's
    # benchmark measures its own.
    times = []
    for _ in range(PREFILL_RUNS):
        llm.reset()
        started = time.perf_counter()
        llm.eval(PROMPT)
        times.append(time.perf_counter() - started)
    prefill = len(PROMPT) / statistics.median(times)
    decode = greedy_steps(llm, DECODE_STEPS)
    del llm
    return {"load_s": load_s, "prefill": prefill, "decode": decode}


def llama_cpp_batched(path, threads):
    """Aggregate decode tokens/s with n sequences decoded together, for each n in BATCHES: each
    sequence gets its own 16-token prompt (prefilled together, untimed), then every step is one
    llama_decode of one token per sequence, greedy, as versus's benchmark does."""
    llm = llama_cpp.Llama(model_path=path, n_threads=threads, n_threads_batch=threads,
                          n_ctx=512, n_batch=512, verbose=False)
    rates = {}
    for n in BATCHES:
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = n * (BATCH_PROMPT + BATCH_STEPS + 8)
        params.n_batch = max(512, n * BATCH_PROMPT)
        params.n_ubatch = params.n_batch
        params.n_seq_max = n
        params.n_threads = threads
        params.n_threads_batch = threads
        ctx = llama_cpp.llama_init_from_model(llm._model.model, params)
        batch = llama_cpp.llama_batch_init(n * BATCH_PROMPT, 0, n)

        def decode(entries):
            """entries: (token, position, sequence, wants logits)"""
            batch.n_tokens = len(entries)
            for i, (token, pos, seq, logits) in enumerate(entries):
                batch.token[i] = token
                batch.pos[i] = pos
                batch.n_seq_id[i] = 1
                batch.seq_id[i][0] = seq
                batch.logits[i] = logits
            if llama_cpp.llama_decode(ctx, batch) != 0:
                sys.exit(f"llama_decode failed on {path} with {n} sequences")
            picks, row = [], 0
            for i, entry in enumerate(entries):
                if entry[3]:
                    pointer = llama_cpp.llama_get_logits_ith(ctx, i)
                    picks.append(int(np.argmax(np.ctypeslib.as_array(pointer, shape=(VOCAB,)))))
                    row += 1
            return picks

        prompts = [[(i * 7919 + s * 104729) % 100000 for i in range(BATCH_PROMPT)] for s in range(n)]
        next_tokens = decode([(tok, pos, s, pos == BATCH_PROMPT - 1)
                              for s in range(n) for pos, tok in enumerate(prompts[s])])
        started = time.perf_counter()
        for step in range(BATCH_STEPS):
            next_tokens = decode([(next_tokens[s], BATCH_PROMPT + step, s, True) for s in range(n)])
        rates[n] = n * BATCH_STEPS / (time.perf_counter() - started)
        llama_cpp.llama_batch_free(batch)
        llama_cpp.llama_free(ctx)
    del llm
    return rates


CONTEXT_STEPS = 100


def llama_cpp_after_context(path, threads, context):
    """Decode tokens/s over CONTEXT_STEPS greedy steps after `context` positions."""
    llm = llama_cpp.Llama(model_path=path, n_threads=threads, n_threads_batch=threads,
                          n_ctx=context + CONTEXT_STEPS + 8, n_batch=context + CONTEXT_STEPS + 8,
                          verbose=False)
    llm.eval([(i * 7919) % 100000 for i in range(context)])
    rate = greedy_steps(llm, CONTEXT_STEPS)
    del llm
    return rate


def versus_after_context(path, threads, repo, context):
    """The engine benchmark's decode profile after `context` positions (its 200 steps)."""
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
    out = subprocess.run(
        ["cargo", "bench", "--quiet", "-p", "versus-engine", "--bench", "engine", "--", "--gguf", path,
         "--profile", "decode", "--context", str(context)],
        cwd=repo, env=env, capture_output=True, text=True, check=False)
    match = re.search(r"(\S+) tokens/s \(after a context", out.stdout)
    if not match:
        sys.exit(f"the versus benchmark failed on {path}:\n{out.stdout}\n{out.stderr}")
    return float(match.group(1))


def versus_once(path, threads, repo):
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
    out = subprocess.run(
        ["cargo", "bench", "--quiet", "-p", "versus-engine", "--bench", "engine", "--", "--gguf", path],
        cwd=repo, env=env, capture_output=True, text=True, check=False)
    match = re.search(r"RESULT load_s=(\S+) prefill=(\S+) decode=(\S+) candle_decode=(\S+)", out.stdout)
    if not match:
        sys.exit(f"the versus benchmark failed on {path}:\n{out.stdout}\n{out.stderr}")
    load_s, prefill, decode, candle = map(float, match.groups())
    batched = {int(n): float(rate) for n, rate in re.findall(r"batch(\d+)=(\S+)", out.stdout)}
    # Until then versus reads Q8_0 matrices (and Q4_K, Q5_K and Q6_K ones with AVX-512) as stored
    # while a background thread interleaves them; its rates are measured after.
    ready = re.search(r"ready_s=(\S+)", out.stdout)
    ready_s = float(ready.group(1)) if ready else load_s
    # The bytes of weights a decode step reads (every matrix but an embedding table of its own)
    # and the machine's bandwidth, measured in the same process: what bounds decode.
    step_bytes = int(re.search(r"decode_step_bytes=(\d+)", out.stdout).group(1))
    bandwidth = float(re.search(r"bandwidth_gbs=(\S+)", out.stdout).group(1))
    return {"load_s": load_s, "ready_s": ready_s, "prefill": prefill, "decode": decode,
            "candle_decode": candle, "batched": batched, "step_bytes": step_bytes,
            "bandwidth": bandwidth}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dir", default="/tmp/gguf-bench")
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--types", default="q4_k,q8_0,f16",
                        help="comma-separated, of q4_k, q8_0, f16, q4_k_m, q5_k_m")
    parser.add_argument("--prepare-only", action="store_true", help="write the files and stop")
    parser.add_argument("--context", type=int, default=0,
                        help="also time decode after this many positions of context (0: not)")
    args = parser.parse_args()
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    os.makedirs(args.dir, exist_ok=True)
    files = {"f16": os.path.join(args.dir, f"phi4-{args.layers}l-f16.gguf")}
    if not os.path.exists(files["f16"]):
        print(f"writing {files['f16']} ...", file=sys.stderr)
        write_f16(files["f16"], args.layers)
    types = args.types.split(",")
    known = {"f16", "q8_0", "q4_k", "q4_k_m", "q5_k_m"}
    if not set(types) <= known:
        sys.exit(f"--types takes {', '.join(sorted(known))}, not {', '.join(sorted(set(types) - known))}")
    mixes = [("q8_0", llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0, True),
             ("q4_k", llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_K_S, True),
             ("q4_k_m", llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_K_M, False),
             ("q5_k_m", llama_cpp.LLAMA_FTYPE_MOSTLY_Q5_K_M, False)]
    for name, ftype, pure in mixes:
        files[name] = os.path.join(args.dir, f"phi4-{args.layers}l-{name}.gguf")
        if name in types and not os.path.exists(files[name]):
            print(f"quantizing to {files[name]} ...", file=sys.stderr)
            quantize(files["f16"], files[name], ftype, args.threads, pure)
    if args.prepare_only:
        for name in types:
            print(name, files[name], tensor_types(files[name]))
        return
    print("building the versus benchmark ...", file=sys.stderr)
    subprocess.run(["cargo", "bench", "-p", "versus-engine", "--bench", "engine", "--no-run"], cwd=repo, check=True)

    results = {t: {"versus": [], "llama.cpp": []} for t in types}
    for round_ in range(args.rounds):
        for t in types:
            print(f"round {round_ + 1}: {t}", file=sys.stderr)
            # Alternate which engine goes first, so neither always runs on a warmer page cache.
            engines = [("versus", lambda: versus_once(files[t], args.threads, repo)),
                       ("llama.cpp", lambda: {**llama_cpp_once(files[t], args.threads),
                                              "batched": llama_cpp_batched(files[t], args.threads)})]
            if round_ % 2:
                engines.reverse()
            for engine, once in engines:
                results[t][engine].append(once())
            if args.context:
                after = [("versus", lambda: versus_after_context(files[t], args.threads, repo, args.context)),
                         ("llama.cpp", lambda: llama_cpp_after_context(files[t], args.threads, args.context))]
                if round_ % 2:
                    after.reverse()
                for engine, once in after:
                    results[t][engine][-1]["after_context"] = once()

    def med(rows, key):
        return statistics.median(r[key] for r in rows)

    print(f"Phi-4 shape, {args.layers} of 40 layers, vocab {VOCAB}; prompt {len(PROMPT)} tokens, "
          f"{DECODE_STEPS} greedy decode steps; {args.threads} threads; medians of {args.rounds} interleaved rounds; "
          f"llama-cpp-python {llama_cpp.__version__}\n")
    print("| file (tensor types) | versus prefill / decode tok/s | candle's matmul alone, decode | llama.cpp prefill / decode tok/s | versus / llama.cpp, prefill / decode | load s, versus / llama.cpp | versus at full speed after, s |")
    print("|---|---|---|---|---|---|---|")
    for t in types:
        ours, theirs = results[t]["versus"], results[t]["llama.cpp"]
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(tensor_types(files[t]).items()))
        print(f"| {t} ({kinds}) | {med(ours, 'prefill'):.1f} / {med(ours, 'decode'):.2f} | {med(ours, 'candle_decode'):.2f} "
              f"| {med(theirs, 'prefill'):.1f} / {med(theirs, 'decode'):.2f} "
              f"| {med(ours, 'prefill') / med(theirs, 'prefill'):.2f} / {med(ours, 'decode') / med(theirs, 'decode'):.2f} "
              f"| {med(ours, 'load_s'):.1f} / {med(theirs, 'load_s'):.1f} | {med(ours, 'ready_s'):.1f} |")

    # Both engines read the same file's matrices once a decode step; the bound is the best
    # bandwidth the versus benchmark measured in any of its runs of that file.
    print(f"\nDecode as a share of the memory bandwidth: the bytes of weights a step reads (every "
          f"matrix but an embedding table of its own) times tokens/s, over the best of the "
          f"bandwidths measured in the versus runs (a parallel sum over 1 GiB on the same threads)\n")
    print("| file | weights read a step, GB | bandwidth, GB/s | versus decode GB/s (% of bandwidth) | llama.cpp decode GB/s (% of bandwidth) |")
    print("|---|---|---|---|---|")
    for t in types:
        ours, theirs = results[t]["versus"], results[t]["llama.cpp"]
        step = ours[0]["step_bytes"] / 1e9
        bound = max(r["bandwidth"] for r in ours)
        a, b = step * med(ours, "decode"), step * med(theirs, "decode")
        print(f"| {t} | {step:.3f} | {bound:.1f} | {a:.1f} ({100 * a / bound:.0f}%) | {b:.1f} ({100 * b / bound:.0f}%) |")

    print(f"\nAggregate decode tokens/s with n sequences decoded together ({BATCH_PROMPT}-token prompts, "
          f"{BATCH_STEPS} greedy steps); versus / llama.cpp, and each engine's n = 16 over its n = 1\n")
    print("| file | " + " | ".join(f"n = {n}: versus / llama.cpp" for n in BATCHES) + " | 16 / 1, versus / llama.cpp |")
    print("|---|" + "---|" * (len(BATCHES) + 1))
    for t in types:
        ours, theirs = results[t]["versus"], results[t]["llama.cpp"]
        cells = []
        for n in BATCHES:
            a = statistics.median(r["batched"][n] for r in ours)
            b = statistics.median(r["batched"][n] for r in theirs)
            cells.append(f"{a:.1f} / {b:.1f} ({a / b:.2f}x)")
        scale = lambda rows: (statistics.median(r["batched"][BATCHES[-1]] for r in rows)
                              / statistics.median(r["batched"][BATCHES[0]] for r in rows))
        print(f"| {t} | " + " | ".join(cells) + f" | {scale(ours):.2f} / {scale(theirs):.2f} |")

    if args.context:
        print(f"\nDecode tokens/s after {args.context} positions of context (greedy steps, one sequence)\n")
        print("| file | versus | llama.cpp | versus / llama.cpp |")
        print("|---|---|---|---|")
        for t in types:
            a = med(results[t]["versus"], "after_context")
            b = med(results[t]["llama.cpp"], "after_context")
            print(f"| {t} | {a:.2f} | {b:.2f} | {a / b:.2f} |")


if __name__ == "__main__":
    main()
