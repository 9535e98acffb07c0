#!/usr/bin/env python3
"""The real transformers path, once (issue 19; not in CI: it needs torch and transformers).

A small randomly initialised Llama (LlamaConfig, no download) with SmolLM2's tokenizer
(exported from the GGUF by `hallmark text tokenizer`) generates through
`model.generate(..., logits_processor=[hallmark.text.LogitsProcessor(...)])`, for every
shipped scheme; `hallmark text detect --tokenizer tokenizer.json` (the CLI) and
`hallmark.text.Detector` score the decoded text. Unwatermarked generations are scored too.

    scripts/fetch-model.sh models
    pip install ./crates/hallmark-py torch transformers
    python3 scripts/python_transformers_run.py [path/to/hallmark]
"""

import json
import os
import subprocess
import sys
import tempfile

import torch
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

import hallmark
from hallmark.text import Detector, LogitsProcessor

HM = sys.argv[1] if len(sys.argv) > 1 else "hallmark"
GGUF = "models/SmolLM2-135M-Instruct.Q4_1.gguf"


def cli_detect(keys, tok, text, scheme, d):
    f = os.path.join(d, "t.txt")
    with open(f, "w") as fh:
        fh.write(text)
    r = subprocess.run([HM, "--json", "text", "detect", "--key", keys.dir, "--tokenizer", tok, "--scheme", scheme, f],
                       capture_output=True, text=True)
    return json.loads(r.stdout.splitlines()[0]), r.returncode


def main():
    with tempfile.TemporaryDirectory() as d:
        tok_path = os.path.join(d, "tokenizer.json")
        subprocess.run([HM, "text", "tokenizer", GGUF, "-o", tok_path], check=True)
        tokenizer = PreTrainedTokenizerFast(tokenizer_file=tok_path)
        keys = hallmark.Keys.generate(os.path.join(d, "keys"))
        torch.manual_seed(0)
        model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tokenizer), hidden_size=128, intermediate_size=256,
                                             num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4))
        model.eval()
        prompts = ["The lighthouse keeper", "Write a short note about the harbour.", "In the morning"]
        print(f"transformers {__import__('transformers').__version__}, torch {torch.__version__}, hallmark {hallmark.__version__}")
        print("scheme | temperature | prompt | tokens | CLI p-value (exit) | Python p-value | unwatermarked CLI p-value")
        for scheme in ("gumbel", "kgw", "robust", "kgw-robust"):
            for temp in (0.7, 1.0):
                for i, prompt in enumerate(prompts):
                    inputs = tokenizer(prompt, return_tensors="pt")
                    n = inputs.input_ids.shape[1]
                    wm = LogitsProcessor(keys, vocab_size=model.config.vocab_size, scheme=scheme)
                    torch.manual_seed(100 + i)
                    out = model.generate(**inputs, do_sample=True, temperature=temp, top_k=0, max_new_tokens=200,
                                         min_new_tokens=200, logits_processor=[wm], pad_token_id=0)
                    text = tokenizer.decode(out[0, n:])
                    c, code = cli_detect(keys, tok_path, text, scheme, d)
                    p = Detector(keys, tokenizer=tokenizer, scheme=scheme).detect(text)
                    torch.manual_seed(100 + i)
                    plain = model.generate(**inputs, do_sample=True, temperature=temp, top_k=0, max_new_tokens=200,
                                           min_new_tokens=200, pad_token_id=0)
                    u, _ = cli_detect(keys, tok_path, tokenizer.decode(plain[0, n:]), scheme, d)
                    print(f"{scheme} | {temp} | {i} | {out.shape[1] - n} | {c['p_value']:.2e} ({code}) | "
                          f"{p.p_value:.2e} | {u['p_value']:.2e}")


if __name__ == "__main__":
    main()
