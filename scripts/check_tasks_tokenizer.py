"""Hold transformers' tokenizer to moekit's on the built-in corpus (docs/tasks.md).

    node scripts/tasks-report.mjs --dump /tmp/tasks-tok && python scripts/check_tasks_tokenizer.py /tmp/tasks-tok

Loads DIR with AutoTokenizer and PreTrainedTokenizerFast and checks, for every example of examples.json,
that the prompt + answer encodes to the corpus ids (<bos> added by the post-processor), that the ids decode
back (with and without special tokens), and that the chat template renders user + assistant turns to the
same ids. Needs transformers, tokenizers and jinja2 (no PyTorch).
"""
import json
import sys

from transformers import AutoTokenizer, PreTrainedTokenizerFast

d = sys.argv[1]
examples = json.load(open(f"{d}/examples.json"))
for tok in (AutoTokenizer.from_pretrained(d), PreTrainedTokenizerFast.from_pretrained(d)):
    bad = []
    for e in examples:
        ids, text = e["ids"], e["prompt"] + e["answer"]
        if tok(text)["input_ids"] != ids[:-1]:
            bad.append(("encode", e["task"], e["prompt"]))
        if tok.decode(ids) != "<bos>" + text + "<eos>" or tok.decode(ids, skip_special_tokens=True) != text:
            bad.append(("decode", e["task"], e["prompt"]))
        chat = tok.apply_chat_template([{"role": "user", "content": e["prompt"]}, {"role": "assistant", "content": e["answer"]}], tokenize=True)
        if not isinstance(chat, list):
            chat = chat["input_ids"]
        if chat != ids:
            bad.append(("chat", e["task"], e["prompt"]))
    print(f"{type(tok).__name__}: vocabulary {len(tok)}, {len(examples)} examples, {len(bad)} mismatches")
    for b in bad[:5]:
        print("  ", b)
    if bad:
        sys.exit(1)
