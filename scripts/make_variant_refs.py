# Reference logits of config variants of the tiny fixtures: each variant is a fixture with a few config keys
# overridden (fixtures/hf-tiny-moe-variants/variants.json), run by the reference implementation (transformers,
# float32, eager, eval mode) on that fixture's input_ids. Options the shared fixtures leave at one value
# (norm_topk_prob, sliding windows, group routing, clip_qkv, ...) get a golden test this way.
# Usage: python3 scripts/make_variant_refs.py FIXDIR VARIANTS.json OUT.safetensors
import json, os, shutil, sys, tempfile
import torch, transformers
from safetensors.torch import load_file, save_file
fix, spec, out = sys.argv[1], sys.argv[2], sys.argv[3]
torch.use_deterministic_algorithms(True)
t = {}
for name, v in json.load(open(spec)).items():
    d = tempfile.mkdtemp()
    base = os.path.join(fix, v["base"])
    for f in os.listdir(base):
        shutil.copy(os.path.join(base, f), d)
    cfg = json.load(open(os.path.join(d, "config.json")))
    cfg.update(v["overrides"])
    json.dump(cfg, open(os.path.join(d, "config.json"), "w"))
    try:
        m = transformers.AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32, attn_implementation="eager")
        m.eval()
        ids = load_file(os.path.join(base, "reference.safetensors"))["input_ids"].long()
        with torch.no_grad():
            logits = m(input_ids=ids).logits.float().contiguous()
        t[f"{name}.logits"] = logits
        print("OK", name, tuple(logits.shape), float(logits.abs().max()))
    except Exception as e:
        print("FAIL", name, repr(e)[:300])
save_file(t, out)
