# Records, with the reference implementation (transformers, float32, eager), the raw router
# logits and the experts chosen per token for the tiny fixtures whose reference.safetensors
# lacks them (deepseek_v3, granitemoe), and the chosen experts for every fixture.
# Usage (on a machine with torch + transformers): python3 scripts/make_router_refs.py OUTDIR
import os, sys, types
import torch
import torch.nn.functional as F
import transformers
from safetensors.torch import load_file, save_file

out = sys.argv[1]
root = os.path.join(os.path.dirname(__file__), "..", "fixtures", "hf-tiny-moe")
print("transformers", transformers.__version__, "torch", torch.__version__)
for name in sorted(os.listdir(root)):
    d = os.path.join(root, name)
    if not os.path.isdir(d):
        continue
    ref = load_file(os.path.join(d, "reference.safetensors"))
    ids = ref["input_ids"].long()
    m = transformers.AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32, attn_implementation="eager").eval()
    cfg = m.config
    H = cfg.hidden_size
    logits_rec, chosen_rec = {}, {}
    hooks = []
    moe_i = 0
    orig_topk = torch.topk
    orig_mtopk = torch.Tensor.topk
    for li, layer in enumerate(m.model.layers):
        mlp = getattr(layer, "mlp", None) or getattr(layer, "block_sparse_moe", None)
        gate = None
        for attr in ("gate", "router"):
            g = getattr(mlp, attr, None)
            if g is not None and hasattr(g, "weight") and g.weight.dim() == 2 and g.weight.shape[0] > 1:
                gate = g
            elif g is not None and hasattr(g, "layer"):
                gate = g.layer
        if gate is None:
            continue
        L = moe_i
        moe_i += 1

        def hook(mod, inp, outp, L=L, gate=gate):
            x = inp[0].reshape(-1, H).float()
            lg = F.linear(x, gate.weight.float(), getattr(gate, "bias", None))
            logits_rec[L] = lg.detach().clone()
        hooks.append(gate.register_forward_hook(hook))

        # record the experts the block itself selects: capture torch.topk calls made inside it
        def pre(mod, inp, L=L):
            calls = []
            def topk_spy(*a, **k):
                r = orig_topk(*a, **k)
                calls.append(r)
                return r
            def mtopk_spy(self, *a, **k):
                r = orig_mtopk(self, *a, **k)
                calls.append(r)
                return r
            torch.topk = topk_spy
            torch.Tensor.topk = mtopk_spy
            mod._calls = calls
        def post(mod, inp, outp, L=L):
            torch.topk = orig_topk
            torch.Tensor.topk = orig_mtopk
            N = ids.numel()
            K = cfg.num_experts_per_tok if hasattr(cfg, "num_experts_per_tok") else cfg.moe_k
            cands = [c.indices for c in mod._calls if c.indices.dim() == 2 and c.indices.shape == (N, K)]
            if cands:
                chosen_rec[L] = cands[-1].detach().clone()
        hooks.append(mlp.register_forward_pre_hook(pre))
        hooks.append(mlp.register_forward_hook(post))
    with torch.no_grad():
        o = m(input_ids=ids)
    for h in hooks:
        h.remove()
    torch.topk = orig_topk
    torch.Tensor.topk = orig_mtopk
    dl = (o.logits.float() - ref["logits"]).abs().max().item()
    t = {}
    for L, lg in logits_rec.items():
        t[f"router_logits.{L}"] = lg.contiguous()
        if f"router_logits.{L}" in ref:
            print(name, L, "router logits vs reference.safetensors", (lg - ref[f"router_logits.{L}"]).abs().max().item())
    for L, c in chosen_rec.items():
        t[f"router_experts.{L}"] = c.to(torch.int32).contiguous()
    os.makedirs(os.path.join(out, name), exist_ok=True)
    save_file(t, os.path.join(out, name, "router_reference.safetensors"))
    print("OK", name, "logits maxdiff vs reference", dl, "moe layers", len(logits_rec), "chosen", len(chosen_rec))
