# Trains a tiny byte-level BPE (GPT-2 style: 256 byte symbols + merges, vocab 512) on a text
# file and writes a Hugging Face tokenizer.json, so the bundled example checkpoint (random
# weights, vocab 512) can take --prompt text. Plain Python, no dependencies.
# Usage: python3 scripts/make_example_tokenizer.py CORPUS.txt OUT_DIR [VOCAB=512]
import json, re, sys, collections

corpus, out = sys.argv[1], sys.argv[2]
vocab_size = int(sys.argv[3]) if len(sys.argv) > 3 else 512

def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b); cs.append(256 + n); n += 1
    return dict(zip(bs, map(chr, cs)))

b2u = bytes_to_unicode()
# GPT-2's pre-tokenisation split (without \p classes: ASCII approximation is enough here)
pat = re.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?[A-Za-z]+| ?[0-9]+| ?[^\sA-Za-z0-9]+|\s+(?!\S)|\s+""")
text = open(corpus, encoding="utf-8", errors="replace").read()
words = collections.Counter("".join(b2u[b] for b in w.encode("utf-8")) for w in pat.findall(text))
splits = {w: list(w) for w in words}
vocab = {b2u[b]: i for i, b in enumerate(range(256))}
# order the 256 byte symbols as GPT-2 does (by byte value)
vocab = {ch: i for i, ch in enumerate(b2u[b] for b in range(256))}
merges = []
while len(vocab) < vocab_size - 1:  # keep one id for <|endoftext|>
    pairs = collections.Counter()
    for w, c in words.items():
        s = splits[w]
        for a, b in zip(s, s[1:]):
            pairs[(a, b)] += c
    if not pairs:
        break
    (a, b), _ = max(pairs.items(), key=lambda kv: (kv[1], kv[0]))
    merges.append(f"{a} {b}")
    vocab[a + b] = len(vocab)
    for w in words:
        s = splits[w]
        i, t = 0, []
        while i < len(s):
            if i + 1 < len(s) and s[i] == a and s[i + 1] == b:
                t.append(a + b); i += 2
            else:
                t.append(s[i]); i += 1
        splits[w] = t
eot = len(vocab)
vocab["<|endoftext|>"] = eot
tok = {
    "version": "1.0",
    "truncation": None,
    "padding": None,
    "added_tokens": [{"id": eot, "content": "<|endoftext|>", "single_word": False, "lstrip": False,
                      "rstrip": False, "normalized": False, "special": True}],
    "normalizer": None,
    "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
    "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
    "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
    "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
              "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
              "vocab": vocab, "merges": merges},
}
json.dump(tok, open(f"{out}/tokenizer.json", "w"), ensure_ascii=False, indent=1)
json.dump({"tokenizer_class": "PreTrainedTokenizerFast", "eos_token": "<|endoftext|>", "bos_token": None,
           "add_bos_token": False, "model_max_length": 256, "clean_up_tokenization_spaces": False,
           "chat_template": "{% for message in messages %}{{ message['role'] }}: {{ message['content'] }}\n{% endfor %}"
                            "{% if add_generation_prompt %}assistant:{% endif %}"},
          open(f"{out}/tokenizer_config.json", "w"), indent=1)
print("vocab", len(vocab), "merges", len(merges))
