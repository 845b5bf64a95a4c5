# An extracted moekit sub-model loaded by the reference implementation: transformers' logits on input_ids against the
# logits moekit computed (both in CHECK.safetensors: input_ids int32 [B, T], logits f32 [B, T, V], written by
# `node scripts/extracted-logits.mjs DIR`). Prints the loading info and max |Δ|.
# Usage: python3 scripts/check_extracted_with_transformers.py DIR
import sys
import torch, transformers
from safetensors.torch import load_file
d = sys.argv[1]
m, info = transformers.AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32, attn_implementation="eager", output_loading_info=True)
m.eval()
print("loading info:", {k: v for k, v in info.items() if v})
ref = load_file(f"{d}/check.safetensors")
with torch.no_grad():
    logits = m(input_ids=ref["input_ids"].long()).logits.float()
print("transformers", transformers.__version__, "max |logits - moekit|:", float((logits - ref["logits"]).abs().max()))
