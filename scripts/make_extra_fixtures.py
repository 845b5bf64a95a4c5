# Extra tiny fixtures in the format of fixtures/hf-tiny-moe (see its README and make_fixtures.py):
# DeepSeek-V2 (softmax router with group-limited greedy top-k and routed scaling, q without
# LoRA, YaRN with mscale). Run where torch + transformers are:
#   python3 scripts/make_extra_fixtures.py OUTDIR
import os, sys
import torch
import transformers
from safetensors.torch import save_file

out = sys.argv[1]
seed = 1234
torch.manual_seed(seed)
V = 512
g = torch.Generator().manual_seed(seed + 1)
ids = torch.randint(0, V, (2, 24), generator=g)
cfg = transformers.DeepseekV2Config(
    vocab_size=V, hidden_size=64, intermediate_size=96, num_hidden_layers=3, num_attention_heads=4,
    num_key_value_heads=4, max_position_embeddings=256, rms_norm_eps=1e-6, tie_word_embeddings=False,
    n_routed_experts=8, num_experts_per_tok=3, n_shared_experts=2, moe_intermediate_size=32,
    first_k_dense_replace=1, moe_layer_freq=1, n_group=4, topk_group=2, topk_method="group_limited_greedy",
    routed_scaling_factor=1.5, norm_topk_prob=False, kv_lora_rank=32, q_lora_rank=None,
    qk_rope_head_dim=8, qk_nope_head_dim=16, v_head_dim=16, head_dim=8,
    rope_scaling={"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 64, "beta_fast": 32,
                  "beta_slow": 1, "mscale": 0.707, "mscale_all_dim": 0.707, "rope_theta": 10000.0},
    rope_theta=10000.0)
cfg._attn_implementation = "eager"
torch.manual_seed(seed)
m = transformers.DeepseekV2ForCausalLM(cfg).float().eval()
with torch.no_grad():
    for n, p in list(m.named_parameters()):
        if n.endswith("mlp.gate.weight"):
            p.copy_(0.3 * torch.randn_like(p))
        elif p.dim() == 1 and "norm" in n:
            p.copy_(1.0 + 0.1 * torch.randn_like(p))
d = os.path.join(out, "deepseek_v2")
m.save_pretrained(d, safe_serialization=True)
# router logits and chosen experts recorded inside the MoE blocks
rec_logits, rec_idx = {}, {}
orig_topk, orig_mtopk = torch.topk, torch.Tensor.topk
hooks = []
L = 0
for layer in m.model.layers:
    mlp = layer.mlp
    gate = getattr(mlp, "gate", None)
    if gate is None or not hasattr(gate, "weight") or gate.weight.shape[0] != 8:
        continue
    def hook(mod, inp, outp, L=L):
        x = inp[0].reshape(-1, 64).float()
        rec_logits[L] = torch.nn.functional.linear(x, mod.weight.float()).detach().clone()
    hooks.append(gate.register_forward_hook(hook))
    def pre(mod, inp, L=L):
        calls = []
        def spy(*a, **k):
            r = orig_topk(*a, **k); calls.append(r); return r
        def mspy(self, *a, **k):
            r = orig_mtopk(self, *a, **k); calls.append(r); return r
        torch.topk = spy; torch.Tensor.topk = mspy; mod._calls = calls
    def post(mod, inp, outp, L=L):
        torch.topk = orig_topk; torch.Tensor.topk = orig_mtopk
        c = [r.indices for r in mod._calls if r.indices.dim() == 2 and tuple(r.indices.shape) == (48, 3)]
        if c:
            rec_idx[L] = c[-1].detach().clone()
    hooks.append(mlp.register_forward_pre_hook(pre)); hooks.append(mlp.register_forward_hook(post))
    L += 1
with torch.no_grad():
    o = m(input_ids=ids, output_hidden_states=True)
for h in hooks:
    h.remove()
torch.topk, torch.Tensor.topk = orig_topk, orig_mtopk
with torch.no_grad():
    gen = m.generate(ids[:1, :8], max_new_tokens=12, do_sample=False)
t = {"input_ids": ids.to(torch.int32).contiguous(), "logits": o.logits.float().contiguous(),
     "generated_ids": gen.to(torch.int32).contiguous()}
for i, h in enumerate(o.hidden_states):
    t[f"hidden_states.{i}"] = h.float().contiguous()
for k, v in rec_logits.items():
    t[f"router_logits.{k}"] = v.contiguous()
save_file(t, os.path.join(d, "reference.safetensors"))
save_file({**{f"router_logits.{k}": v.contiguous() for k, v in rec_logits.items()},
           **{f"router_experts.{k}": v.to(torch.int32).contiguous() for k, v in rec_idx.items()}},
          os.path.join(d, "router_reference.safetensors"))
print("OK deepseek_v2", transformers.__version__, "moe layers", len(rec_logits), "chosen", len(rec_idx), "gen", gen.tolist())
