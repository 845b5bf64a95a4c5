# Pruned checkpoints written by `moekit experts prune`, loaded by the reference implementation: for every
# OUTDIR/<name>/ that scripts/pruned-for-transformers.mjs made, from_pretrained must report no missing, unexpected
# or mismatched keys; every MoE module must hold the config's expert count (router rows, expert tensors) and top-k;
# transformers' logits on check.safetensors' input_ids must be within 1e-4 of moekit's, and its greedy ids equal.
# Prints one line per checkpoint and a JSON summary; exits 1 on any failure.
# Usage: python3 scripts/check_pruned_with_transformers.py OUTDIR
import json, os, sys
import torch, transformers
from safetensors.torch import load_file

out = sys.argv[1]
summary, ok = {}, True
for name in sorted(os.listdir(out)):
    d = os.path.join(out, name)
    if not os.path.isfile(os.path.join(d, "check.safetensors")):
        continue
    cfg = json.load(open(os.path.join(d, "config.json")))
    m, info = transformers.AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32, attn_implementation="eager", output_loading_info=True)
    m.eval()
    problems = {k: v for k, v in info.items() if v}
    E = next(cfg[k] for k in ("num_local_experts", "num_experts", "n_routed_experts") if k in cfg)
    shapes = set()
    for mod_name, p in m.named_parameters():
        leaf = mod_name.split(".")[-2] + "." + mod_name.split(".")[-1]
        if leaf in ("gate.weight", "router.weight", "layer.weight") and p.dim() == 2:  # the router linear [E, H]
            shapes.add(p.shape[0])
        if ".experts." in mod_name and ("gate_up_proj" in mod_name or "down_proj" in mod_name) and p.dim() == 3:
            shapes.add(p.shape[0])
    ref = load_file(os.path.join(d, "check.safetensors"))
    with torch.no_grad():
        logits = m(input_ids=ref["input_ids"].long()).logits.float()
        prompt = ref["generated_ids"][:, :8].long()
        m.generation_config.eos_token_id = None  # no stop: moekit generated 8 new ids whatever they were
        m.generation_config.pad_token_id = 0
        gen = m.generate(prompt, max_new_tokens=ref["generated_ids"].shape[1] - 8, do_sample=False)
    diff = float((logits - ref["logits"]).abs().max())
    same_gen = gen[0].tolist() == ref["generated_ids"][0].tolist()
    good = not problems and shapes == {E} and diff <= 1e-4 and same_gen
    ok &= good
    summary[name] = {"experts": E, "top_k": cfg.get("num_experts_per_tok"), "module_expert_dims": sorted(shapes),
                     "loading_problems": problems, "max_abs_logits_diff": diff, "greedy_ids_equal": same_gen, "ok": good}
    print(f"{name}: E={E} top-k={cfg.get('num_experts_per_tok')} expert dims {sorted(shapes)} loading {problems or 'clean'} "
          f"max|logits - moekit| {diff:.3g} greedy ids {'equal' if same_gen else 'DIFFER'} -> {'ok' if good else 'FAIL'}")
print(json.dumps({"transformers": transformers.__version__, "torch": torch.__version__, "checkpoints": summary}))
sys.exit(0 if ok and summary else 1)
