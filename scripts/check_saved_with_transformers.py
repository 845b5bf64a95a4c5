# Load each checkpoint moekit's trainer saved (scripts/save-trained.mjs) with transformers (float32, eager) and compare
# its logits with moekit's. Usage: python3 scripts/check_saved_with_transformers.py DIR
import os, sys
import torch, transformers
from safetensors.torch import load_file
root = sys.argv[1]
worst = 0.0
for arch in sorted(os.listdir(root)):
    d = os.path.join(root, arch)
    ref = load_file(os.path.join(d, "moekit_logits.safetensors"))
    m = transformers.AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32, attn_implementation="eager").eval()
    with torch.no_grad():
        logits = m(input_ids=ref["input_ids"].long()).logits.float()
    diff = (logits - ref["logits"]).abs().max().item()
    worst = max(worst, diff)
    print(f"{arch}: transformers {transformers.__version__} on moekit's saved checkpoint, logits max |diff| {diff:.2e}")
print(f"worst {worst:.2e}")
