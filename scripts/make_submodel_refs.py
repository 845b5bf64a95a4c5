# Golden references for sub-models of the tiny fixtures (fixtures/hf-tiny-moe/<arch>): a decoder layer dropped,
# the experts of every kept MoE layer sliced to an allowed subset (renumbered 0..E'-1 in ascending order), and a
# different top-k. Each sub-model is written as a standalone Hugging Face checkpoint (config rewritten for the
# new layer count / expert count / top-k, tensors renamed and sliced), loaded by the reference implementation
# (transformers, float32, eager attention, eval, CPU) with strict loading checks, and run:
#   fixtures/hf-tiny-moe-submodels/<arch>.safetensors: input_ids, logits, layers, allowed, top_k, generated_ids
# (format and semantics: fixtures/hf-tiny-moe-submodels/README.md).
# Usage (where torch + transformers are):  python3 scripts/make_submodel_refs.py OUTDIR [ARCH ...]
#        (without torch, numpy + safetensors only: build and check the checkpoints, no run)
#                                           python3 scripts/make_submodel_refs.py --dry-run OUTDIR [ARCH ...]
import copy, hashlib, json, os, re, shutil, sys, tempfile

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "hf-tiny-moe")
T_FWD, T_PROMPT, N_NEW = 12, 8, 6

# Per fixture: kept decoder layers (original indices) and, keyed by ORIGINAL decoder layer index, the allowed
# experts (original ids) of each kept MoE layer, and the new top-k (one value: it is one config key).
# Constraints: the same E' in every kept MoE layer, top_k != original K, top_k <= E'; group routers keep the same
# count per contiguous group and top_k <= topk_group * E' / n_group.
SPEC = {
    "mixtral":      {"layers": [0, 2], "allowed": {0: [0, 1, 3, 4, 6, 7], 2: [1, 2, 3, 5, 6, 7]}, "top_k": 3},
    "qwen2_moe":    {"layers": [0, 2], "allowed": {0: [0, 2, 3, 5, 7], 2: [1, 2, 4, 6, 7]}, "top_k": 3},
    "qwen3_moe":    {"layers": [0, 2], "allowed": {0: [1, 3, 4, 6], 2: [0, 2, 5, 7]}, "top_k": 3},
    "olmoe":        {"layers": [0, 2], "allowed": {0: [0, 1, 4, 5, 7], 2: [2, 3, 4, 6, 7]}, "top_k": 1},
    "gpt_oss":      {"layers": [0, 2], "allowed": {0: [0, 2, 5, 7], 2: [1, 3, 4, 6]}, "top_k": 3},
    "granitemoe":   {"layers": [0, 2], "allowed": {0: [0, 1, 2, 4, 5, 6], 2: [1, 2, 3, 5, 6, 7]}, "top_k": 4},
    # layer 0 dense: MoE layers are 1 (MoE index 0) and 2 (MoE index 1); drop layer 1
    "ernie4_5_moe": {"layers": [0, 2], "allowed": {2: [0, 1, 3, 4, 6, 7]}, "top_k": 3},
    # n_group 2 (experts 0-3 | 4-7), topk_group 1: 3 per group, top_k 1 <= 1*6/2. top_k 3 would pick, for many
    # tokens, an expert outside the chosen group: transformers fills the masked experts with 0.0 (not -inf) and
    # this layer's correction bias is as low as -0.32, so the third in-group score is often negative and the
    # 0.0-filled experts tie; top_k 1 never does here (experts 3, 4, 6 have a positive bias: every group's best
    # score is > 0). The script checks it for every token.
    "deepseek_v3":  {"layers": [0, 2], "allowed": {2: [0, 1, 3, 4, 6, 7]}, "top_k": 1},
    # n_group 4 (0-1 | 2-3 | 4-5 | 6-7), topk_group 2: one per group, top_k 2 <= 2*4/4
    "deepseek_v2":  {"layers": [0, 2], "allowed": {2: [1, 2, 5, 6]}, "top_k": 2},
    # issue 16 (fixtures of make_fixtures_more.py). GLM-4.5 and dots.llm1 route as DeepSeek-V3 (0.0-filled groups):
    # n_group 2, topk_group 1, 3 per group, top_k 1
    "glm4_moe":     {"layers": [0, 2], "allowed": {2: [0, 1, 3, 4, 6, 7]}, "top_k": 1},
    "dots1":        {"layers": [0, 2], "allowed": {2: [0, 1, 3, 4, 6, 7]}, "top_k": 1},
    "hunyuan_v1_moe": {"layers": [0, 2], "allowed": {0: [0, 2, 3, 5, 7], 2: [1, 2, 4, 6, 7]}, "top_k": 3},
    "granitemoeshared": {"layers": [0, 2], "allowed": {0: [0, 1, 2, 4, 5, 6], 2: [1, 2, 3, 5, 6, 7]}, "top_k": 3},
    # sparsemixer always picks 2 in transformers (its top_k is unused): the same top-k
    "phimoe":       {"layers": [0, 2], "allowed": {0: [0, 1, 3, 4, 6, 7], 2: [1, 2, 3, 5, 6, 7]}, "top_k": 2},
    # MoE layers 1 and 3 (moe_layers); drop layer 1; layer 3 is the NoPE layer
    "llama4_text":  {"layers": [0, 2, 3], "allowed": {3: [0, 2, 3]}, "top_k": 2},
    # not yet run (their references are not in fixtures/hf-tiny-moe-submodels): test/families.test.ts holds their
    # extracted sub-models to the masked pass meanwhile
    "flex_olmo":    {"layers": [0, 2], "allowed": {0: [0, 1, 3, 4, 6, 7], 2: [1, 2, 3, 5, 6, 7]}, "top_k": 3},
    "aria_text":    {"layers": [0, 2], "allowed": {0: [0, 2, 3, 5, 7], 2: [1, 2, 4, 6, 7]}, "top_k": 3},
}
SAME_TOP_K = {"phimoe"}
SIGMOID_GROUP = ("deepseek_v3", "glm4_moe", "dots1")

EXPERT_COUNT_KEYS = ("num_local_experts", "num_experts", "n_routed_experts", "moe_num_experts")
TOPK_KEYS = ("num_experts_per_tok", "moe_k", "moe_topk")
# tensors of a MoE layer (name after "model.layers.N.") sliced along the expert dim
SLICE_DIM0 = {
    "mlp.gate.weight", "block_sparse_moe.gate.weight",                      # router rows
    "mlp.router.weight", "mlp.router.bias", "block_sparse_moe.router.layer.weight",
    "mlp.gate.e_score_correction_bias",                                     # deepseek_v3 selection bias [E]
    "mlp.experts.gate_up_proj", "mlp.experts.gate_up_proj_bias",            # gpt_oss fused experts
    "mlp.experts.down_proj", "mlp.experts.down_proj_bias",
    "block_sparse_moe.input_linear.weight", "block_sparse_moe.output_linear.weight",  # granitemoe fused experts
    "mlp.gate.wg.weight",                                                   # hunyuan router
    "feed_forward.router.weight", "feed_forward.experts.gate_up_proj", "feed_forward.experts.down_proj",  # llama4
    "mlp.experts.fc1.weight", "mlp.experts.fc2.weight",                     # aria_text fused experts
}
SLICE_DIM1 = {"mlp.moe_statics.e_score_correction_bias"}                    # ernie [1, E]
PER_EXPERT = re.compile(r"^(mlp|block_sparse_moe)\.experts\.(\d+)\.(.+)$")
LAYER = re.compile(r"^model\.layers\.(\d+)\.(.+)$")


def expert_count(cfg):
    for k in EXPERT_COUNT_KEYS:
        if cfg.get(k) is not None:
            return cfg[k]
    raise KeyError("no expert count key")


def top_k_of(cfg):
    for k in TOPK_KEYS:
        if cfg.get(k) is not None:
            return cfg[k]
    raise KeyError("no top-k key")


def is_moe(cfg, i):
    """which decoder layers transformers builds as MoE, from config.json (the rules of the modeling files)"""
    mt, L = cfg["model_type"], cfg["num_hidden_layers"]
    if mt in ("qwen2_moe", "qwen3_moe"):
        return i not in (cfg.get("mlp_only_layers") or []) and expert_count(cfg) > 0 \
            and (i + 1) % cfg.get("decoder_sparse_step", 1) == 0
    if mt in ("deepseek_v2", "deepseek_v3", "glm4_moe", "dots1"):
        return i >= cfg.get("first_k_dense_replace", 0)
    if mt == "llama4_text":
        return i in cfg["moe_layers"]
    if mt == "ernie4_5_moe":
        end = cfg.get("moe_layer_end_index", -1)
        end = L - 1 if end == -1 else end
        return (i + 1) % cfg.get("moe_layer_interval", 1) == 0 and cfg.get("moe_layer_start_index", 1) <= i <= end
    return True  # mixtral, olmoe, gpt_oss, granitemoe: every layer


def sub_config(cfg, layers, E2, K2):
    """config.json of the sub-model: every key that depends on the layer count / index, the expert count, top-k"""
    c = copy.deepcopy(cfg)
    L = cfg["num_hidden_layers"]
    moe_orig = [is_moe(cfg, i) for i in layers]
    c["num_hidden_layers"] = len(layers)
    if c.get("layer_types") is not None:
        c["layer_types"] = [cfg["layer_types"][i] for i in layers]
    if "mlp_only_layers" in c and c["mlp_only_layers"]:
        c["mlp_only_layers"] = [n for n, i in enumerate(layers) if i in cfg["mlp_only_layers"]]
    if "decoder_sparse_step" in c and cfg.get("decoder_sparse_step", 1) != 1:
        # only step 1 maps to a step on the kept layers in general: list the dense ones instead
        c["decoder_sparse_step"] = 1
        c["mlp_only_layers"] = [n for n, m in enumerate(moe_orig) if not m]
    if "first_k_dense_replace" in c:
        dense = [n for n, m in enumerate(moe_orig) if not m]
        assert dense == list(range(len(dense))), "dense layers must stay a prefix"
        c["first_k_dense_replace"] = len(dense)
    if cfg["model_type"] == "llama4_text":
        c["moe_layers"] = [n for n, i in enumerate(layers) if i in cfg["moe_layers"]]
        c["no_rope_layers"] = [cfg["no_rope_layers"][i] for i in layers]
    if cfg["model_type"] == "ernie4_5_moe":
        moe_new = [n for n, m in enumerate(moe_orig) if m]
        assert moe_new and moe_new == list(range(moe_new[0], moe_new[-1] + 1)), "kept MoE layers must be contiguous"
        c["moe_layer_start_index"], c["moe_layer_end_index"], c["moe_layer_interval"] = moe_new[0], moe_new[-1], 1
    for k in EXPERT_COUNT_KEYS:
        if c.get(k) is not None:
            c[k] = E2
    for k in TOPK_KEYS:
        if c.get(k) is not None:
            c[k] = K2
    new_moe = [is_moe(c, n) for n in range(len(layers))]
    assert new_moe == moe_orig, f"MoE pattern changed: {moe_orig} -> {new_moe}"
    return c


def sub_tensors(sd, cfg, layers, allowed_by_layer, take):
    """checkpoint tensors of the sub-model. allowed_by_layer: original layer index -> sorted allowed expert ids"""
    E = expert_count(cfg)
    new_idx = {i: n for n, i in enumerate(layers)}
    out, sliced = {}, {}
    for name, t in sd.items():
        m = LAYER.match(name)
        if not m:
            out[name] = t
            continue
        i, rest = int(m.group(1)), m.group(2)
        if i not in new_idx:
            continue
        pre = f"model.layers.{new_idx[i]}."
        if not is_moe(cfg, i):
            out[pre + rest] = t
            continue
        allowed = allowed_by_layer[i]
        pe = PER_EXPERT.match(rest)
        if pe:
            j = int(pe.group(2))
            if j in allowed:
                out[pre + f"{pe.group(1)}.experts.{allowed.index(j)}.{pe.group(3)}"] = t
            sliced[i] = sliced.get(i, 0) + 1
        elif rest in SLICE_DIM0 or rest in SLICE_DIM1:
            dim = 0 if rest in SLICE_DIM0 else 1
            assert t.shape[dim] == E, (name, t.shape)
            out[pre + rest] = take(t, allowed, dim)
            sliced[i] = sliced.get(i, 0) + 1
        else:
            out[pre + rest] = t
    for i in layers:
        if is_moe(cfg, i):
            assert sliced.get(i, 0) >= 2, f"layer {i}: router/experts not found"
    return out


def masks(cfg, spec):
    """allowed [nMoE, E] int and top_k [nMoE] int per ORIGINAL MoE layer (dropped ones: all ones, original K)"""
    E, K = expert_count(cfg), top_k_of(cfg)
    moe_layers = [i for i in range(cfg["num_hidden_layers"]) if is_moe(cfg, i)]
    allowed, topk = [], []
    for i in moe_layers:
        if i in spec["layers"]:
            a = spec["allowed"][i]
            allowed.append([1 if e in a else 0 for e in range(E)])
            topk.append(spec["top_k"])
        else:
            allowed.append([1] * E)
            topk.append(K)
    return moe_layers, allowed, topk


def check_spec(arch, cfg, spec):
    E, K = expert_count(cfg), top_k_of(cfg)
    layers, K2 = spec["layers"], spec["top_k"]
    assert layers == sorted(set(layers)) and len(layers) == cfg["num_hidden_layers"] - 1
    kept_moe = [i for i in layers if is_moe(cfg, i)]
    assert kept_moe and sorted(spec["allowed"]) == kept_moe, (arch, kept_moe, spec["allowed"])
    sizes = {len(a) for a in spec["allowed"].values()}
    assert len(sizes) == 1, "same E' in every MoE layer"
    E2 = sizes.pop()
    for a in spec["allowed"].values():
        assert a == sorted(set(a)) and all(0 <= e < E for e in a)
    assert (K2 == K if arch in SAME_TOP_K else K2 != K) and 1 <= K2 <= E2 < E, (K2, K, E2)
    ng, tg = cfg.get("n_group") or 1, cfg.get("topk_group") or 1
    if ng > 1 and (cfg.get("topk_method") == "group_limited_greedy" or cfg["model_type"] in SIGMOID_GROUP):
        per = E // ng
        for a in spec["allowed"].values():
            counts = {g: sum(1 for e in a if e // per == g) for g in range(ng)}
            assert len(set(counts.values())) == 1, counts
        assert E2 % ng == 0 and K2 <= tg * E2 // ng
        if cfg["model_type"] in SIGMOID_GROUP:
            assert E2 // ng >= 2, "DeepSeek-V3's group score is the sum of the top-2 of a group"
    return E2


def build(arch, spec, d, backend):
    """write the standalone sub-model checkpoint of `arch` into directory d; returns (config, E')"""
    src = os.path.join(ROOT, arch)
    cfg = json.load(open(os.path.join(src, "config.json")))
    E2 = len(next(iter(spec["allowed"].values())))
    c = sub_config(cfg, spec["layers"], E2, spec["top_k"])
    load, save, take = backend
    sd = load(os.path.join(src, "model.safetensors"))
    t = sub_tensors(sd, cfg, spec["layers"], spec["allowed"], take)
    os.makedirs(d, exist_ok=True)
    json.dump(c, open(os.path.join(d, "config.json"), "w"), indent=2)
    g = os.path.join(src, "generation_config.json")
    if os.path.exists(g):
        shutil.copy(g, d)
    save(t, os.path.join(d, "model.safetensors"))
    return cfg, c, t


def numpy_backend():
    from safetensors.numpy import load_file, save_file
    return (load_file, lambda t, p: save_file(t, p, metadata={"format": "pt"}),
            lambda t, idx, dim: t.take(idx, axis=dim))


def torch_backend():
    import torch
    from safetensors.torch import load_file, save_file
    return (load_file, lambda t, p: save_file(t, p, metadata={"format": "pt"}),
            lambda t, idx, dim: t.index_select(dim, torch.tensor(idx)).contiguous())


def dry_run(out, archs):
    be = numpy_backend()
    for arch in archs:
        spec = SPEC[arch]
        cfg = json.load(open(os.path.join(ROOT, arch, "config.json")))
        E2 = check_spec(arch, cfg, spec)
        d = os.path.join(out, arch)
        _, c, t = build(arch, spec, d, be)
        sd = be[0](os.path.join(ROOT, arch, "model.safetensors"))
        changed = {k: (cfg.get(k), c[k]) for k in c if cfg.get(k) != c[k]}
        # expected key set: each kept layer's original names under its new index, experts < E'
        exp = set()
        new_idx = {i: n for n, i in enumerate(spec["layers"])}
        for k in sd:
            m = LAYER.match(k)
            if not m:
                exp.add(k)
                continue
            i, rest = int(m.group(1)), m.group(2)
            if i not in new_idx:
                continue
            pe = PER_EXPERT.match(rest)
            if pe and is_moe(cfg, i) and int(pe.group(2)) >= E2:
                continue
            exp.add(f"model.layers.{new_idx[i]}.{rest}")
        assert exp == set(t), (sorted(exp ^ set(t)))[:10]
        # spot-check values: per-expert and sliced tensors come from the right original expert
        for i, a in spec["allowed"].items():
            n = new_idx[i]
            for k in t:
                if not k.startswith(f"model.layers.{n}."):
                    continue
                rest = k[len(f"model.layers.{n}."):]
                pe = PER_EXPERT.match(rest)
                if pe:
                    o = f"model.layers.{i}.{pe.group(1)}.experts.{a[int(pe.group(2))]}.{pe.group(3)}"
                    assert (t[k] == sd[o]).all(), k
                elif rest in SLICE_DIM0:
                    assert (t[k] == sd[f"model.layers.{i}.{rest}"][a]).all() and t[k].shape[0] == E2, k
                elif rest in SLICE_DIM1:
                    assert (t[k] == sd[f"model.layers.{i}.{rest}"][:, a]).all() and t[k].shape[1] == E2, k
                else:
                    assert (t[k] == sd[f"model.layers.{i}.{rest}"]).all(), k
        moe_layers, allowed, topk = masks(cfg, spec)
        print(f"{arch}: layers {spec['layers']} E' {E2} top_k {spec['top_k']} tensors {len(sd)} -> {len(t)}; "
              f"config changes {changed}; allowed {allowed} top_k {topk}")


def main():
    args = sys.argv[1:]
    if args and args[0] == "--dry-run":
        out, archs = args[1], args[2:] or list(SPEC)
        return dry_run(out, archs)
    out, archs = args[0], args[1:] or list(SPEC)
    import torch, transformers
    from safetensors.torch import load_file, save_file
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(0)
    versions = {"transformers": transformers.__version__, "torch": torch.__version__}
    print("versions", versions)
    be = torch_backend()
    os.makedirs(out, exist_ok=True)
    summary = {}
    failures = []

    def load(d):
        m, info = transformers.AutoModelForCausalLM.from_pretrained(
            d, dtype=torch.float32, attn_implementation="eager", output_loading_info=True)
        return m.eval(), info

    def bad_info(info):
        return {k: v for k, v in info.items() if v and k in ("missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs")}

    def moe_blocks(m):
        for li, layer in enumerate(m.model.layers):
            mlp = getattr(layer, "mlp", None) or getattr(layer, "block_sparse_moe", None) or getattr(layer, "feed_forward", None)
            yield li, mlp

    def describe(m):
        """per layer: MoE block class, router rows, expert and top-k attributes found on its modules"""
        rows = []
        for li, mlp in moe_blocks(m):
            attrs = {}
            for mn, mod in mlp.named_modules():
                for a in ("top_k", "num_experts_per_tok", "num_experts", "n_routed_experts", "num_local_experts"):
                    v = getattr(mod, a, None)
                    if isinstance(v, int) and not isinstance(v, bool):
                        attrs[f"{mn + '.' if mn else ''}{a}"] = v
            router = {n: tuple(p.shape) for n, p in mlp.named_parameters()
                      if re.search(r"(^|\.)(gate|router)(\.layer|\.wg)?\.(weight|bias)$|e_score_correction_bias", n)}
            experts = {n: tuple(p.shape) for n, p in mlp.named_parameters() if ("experts." in n or "_linear." in n) and "shared" not in n
                       and not re.search(r"experts\.\d+\.", n)}
            n_pe = len({n.split("experts.")[1].split(".")[0] for n, _ in mlp.named_parameters()
                        if re.search(r"(?<!shared_)experts\.\d+\.", n)})
            sw = getattr(m.model.layers[li].self_attn, "sliding_window", None)
            rows.append({"layer": li, "mlp": type(mlp).__name__, "attrs": attrs, "router": router,
                         "fused_experts": experts, "per_expert_modules": n_pe, "sliding_window": sw})
        return rows

    def group_check(m, cfg, ids_list):
        """group-limited routers: every chosen expert must lie in a chosen group with a positive choice score
        (transformers fills the other groups with 0.0, so a non-positive k-th score would pick from them)"""
        if not (cfg.get("n_group") or 1) > 1:
            return None
        worst = [float("inf"), 0]
        hooks = []
        for li, mlp in moe_blocks(m):
            gate = getattr(mlp, "gate", None)
            if gate is None or not hasattr(gate, "weight") or gate.weight.shape[0] < 2 or not hasattr(mlp, "experts"):
                continue
            def pre(mod, inp, gate=gate):
                x = inp[0].reshape(-1, inp[0].shape[-1]).float()
                lg = x @ gate.weight.float().t()
                E, ng, tg, K = lg.shape[1], cfg["n_group"], cfg["topk_group"], cfg["num_experts_per_tok"]
                if cfg["model_type"] in SIGMOID_GROUP:
                    s = lg.sigmoid() + gate.e_score_correction_bias.float()
                    gs = s.view(-1, ng, E // ng).topk(2, dim=-1)[0].sum(-1)
                else:
                    s = lg.softmax(-1)
                    gs = s.view(-1, ng, E // ng).max(-1).values
                gi = gs.topk(tg, dim=-1)[1]
                mask = torch.zeros_like(gs).scatter_(1, gi, 1).bool().repeat_interleave(E // ng, dim=1)
                kth = s.masked_fill(~mask, float("-inf")).topk(K, dim=-1)[0][:, -1]
                worst[0] = min(worst[0], kth.min().item())
                worst[1] += x.shape[0]
            hooks.append(mlp.register_forward_pre_hook(pre))
        with torch.no_grad():
            for ids in ids_list:
                m(input_ids=ids)
        for h in hooks:
            h.remove()
        return {"min_kth_in_group_score": worst[0], "tokens": worst[1]}

    for arch in archs:
        spec = SPEC[arch]
        src = os.path.join(ROOT, arch)
        cfg = json.load(open(os.path.join(src, "config.json")))
        E, K = expert_count(cfg), top_k_of(cfg)
        E2 = check_spec(arch, cfg, spec)
        ref = load_file(os.path.join(src, "reference.safetensors"))
        ids = ref["input_ids"][:, :T_FWD].long().contiguous()
        prompt = ref["input_ids"][:1, :T_PROMPT].long().contiguous()
        tmp = tempfile.mkdtemp()
        try:
            # self-test 1: the identity "sub-model" (all layers, all experts, original top-k) reproduces the
            # fixture's reference logits, through the same rewriting code
            moe_all = [i for i in range(cfg["num_hidden_layers"]) if is_moe(cfg, i)]
            ident = {"layers": list(range(cfg["num_hidden_layers"])), "allowed": {i: list(range(E)) for i in moe_all},
                     "top_k": K}
            d0 = os.path.join(tmp, "identity")
            build(arch, ident, d0, be)
            m0, info0 = load(d0)
            with torch.no_grad():
                l0 = m0(input_ids=ref["input_ids"].long()).logits.float()
            st1 = (l0 - ref["logits"]).abs().max().item()
            del m0
            # self-test 2: dropping the layer only (all experts, original top-k) equals the original model with
            # that layer taken out of its ModuleList in memory
            drop = {"layers": spec["layers"], "allowed": {i: list(range(E)) for i in spec["allowed"]}, "top_k": K}
            d1 = os.path.join(tmp, "drop")
            build(arch, drop, d1, be)
            m1, info1 = load(d1)
            morig, _ = load(src)
            morig.model.layers = torch.nn.ModuleList([morig.model.layers[i] for i in spec["layers"]])
            morig.config.num_hidden_layers = len(spec["layers"])
            if getattr(morig.config, "layer_types", None) is not None:
                morig.config.layer_types = [cfg["layer_types"][i] for i in spec["layers"]]
            with torch.no_grad():
                # no cache: the kept layers of the in-memory model keep their original layer_idx
                st2 = (m1(input_ids=ids, use_cache=False).logits
                       - morig(input_ids=ids, use_cache=False).logits).abs().max().item()
            del m1, morig
            # the sub-model
            d = os.path.join(tmp, "sub")
            _, c, written = build(arch, spec, d, be)
            m, info = load(d)
            desc = describe(m)
            print(f"== {arch}: layers {spec['layers']} E {E} -> E' {E2}, top_k {K} -> {spec['top_k']}")
            print("   config changes", {k: (cfg.get(k), c[k]) for k in c if cfg.get(k) != c[k]})
            print("   loading info", {k: v for k, v in info.items()})
            print("   loaded config: num_hidden_layers", m.config.num_hidden_layers, "layers", len(m.model.layers),
                  "num_experts", getattr(m.config, "num_experts", None),
                  "num_experts_per_tok", getattr(m.config, "num_experts_per_tok", None),
                  "layer_types", getattr(m.config, "layer_types", None))
            for r in desc:
                print("  ", r)
            errs = []
            for nm, inf in (("identity", info0), ("drop", info1), ("sub", info)):
                if bad_info(inf):
                    errs.append(f"{nm} loading: {bad_info(inf)}")
            if len(m.model.layers) != len(spec["layers"]) or m.config.num_hidden_layers != len(spec["layers"]):
                errs.append("layer count")
            for r, i in zip(desc, spec["layers"]):
                moe_here = bool(r["router"])
                if moe_here != is_moe(cfg, i):
                    errs.append(f"layer {r['layer']}: MoE {moe_here}, expected {is_moe(cfg, i)}")
                if not moe_here:
                    continue
                for a, v in r["attrs"].items():
                    want = spec["top_k"] if a.endswith(("top_k", "num_experts_per_tok")) else E2
                    if v != want:
                        errs.append(f"layer {r['layer']}: {a} = {v}, expected {want}")
                if not any(a.endswith(("top_k", "num_experts_per_tok")) for a in r["attrs"]):
                    errs.append(f"layer {r['layer']}: no top-k attribute found")
                for n, s in r["router"].items():
                    if E2 not in s:
                        errs.append(f"layer {r['layer']}: {n} {s}")
                for n, s in r["fused_experts"].items():
                    if s[0] != E2:
                        errs.append(f"layer {r['layer']}: {n} {s}")
                if r["per_expert_modules"] not in (0, E2):
                    errs.append(f"layer {r['layer']}: {r['per_expert_modules']} expert modules")
            if st1 > 1e-5:
                errs.append(f"self-test identity: max |logits - reference| {st1:.3g}")
            if st2 > 1e-5:
                errs.append(f"self-test drop: max |standalone - in-memory drop| {st2:.3g}")
            # round trip: what transformers saves back from the loaded model is exactly what was written
            d2 = os.path.join(tmp, "resaved")
            m.save_pretrained(d2)
            back = {}
            for f in sorted(os.listdir(d2)):
                if f.endswith(".safetensors"):
                    back.update(load_file(os.path.join(d2, f)))
            rt = "identical"
            if set(back) != set(written):
                rt = f"key sets differ: only written {sorted(set(written) - set(back))[:6]}, only resaved {sorted(set(back) - set(written))[:6]}"
            else:
                diff = [k for k in written if back[k].shape != written[k].shape or not torch.equal(back[k], written[k])]
                if diff:
                    rt = f"values differ: {diff[:6]}"
            print("   round trip (save_pretrained of the loaded model vs the written checkpoint):", rt)
            if rt != "identical":
                errs.append("round trip: " + rt)
            with torch.no_grad():
                logits = m(input_ids=ids).logits.float().contiguous()
                # no end-of-sequence stop: exactly N_NEW greedy tokens (eos is not suppressed, it just does not stop)
                m.config.eos_token_id = None
                m.generation_config.eos_token_id = None
                if m.generation_config.pad_token_id is None:
                    m.generation_config.pad_token_id = 0
                gen = m.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=N_NEW,
                                 do_sample=False, use_cache=True)
                # greedy ids agree with the argmax of a full forward over the generated sequence
                full = m(input_ids=gen).logits
                tf_ok = torch.equal(full[0, T_PROMPT - 1:-1].argmax(-1), gen[0, T_PROMPT:])
            if tuple(gen.shape) != (1, T_PROMPT + N_NEW):
                errs.append(f"generated shape {tuple(gen.shape)}")
            if not tf_ok:
                errs.append("generated ids != argmax of the forward over them")
            gchk = group_check(m, c, [ids, gen])
            if gchk is not None:
                print("   group routing check", gchk)
                if not gchk["min_kth_in_group_score"] > 0:
                    errs.append(f"group routing picks outside the chosen groups: {gchk}")
            moe_layers, allowed, topk = masks(cfg, spec)
            t = {
                "input_ids": ids.to(torch.int32).contiguous(),
                "logits": logits,
                "layers": torch.tensor(spec["layers"], dtype=torch.int32),
                "allowed": torch.tensor(allowed, dtype=torch.int32),
                "top_k": torch.tensor(topk, dtype=torch.int32),
                "generated_ids": gen.to(torch.int32).contiguous(),
            }
            meta = {"arch": arch, "transformers": transformers.__version__, "torch": torch.__version__,
                    "moe_layers": json.dumps(moe_layers), "config_changes": json.dumps({k: c[k] for k in c if cfg.get(k) != c[k]})}
            p = os.path.join(out, f"{arch}.safetensors")
            save_file(t, p, metadata=meta)
            sha = hashlib.sha256(logits.numpy().tobytes()).hexdigest()[:16]
            print(f"   self-tests: identity vs reference {st1:.2e}, drop vs in-memory drop {st2:.2e}; "
                  f"teacher-forced greedy agrees {tf_ok}")
            print(f"   logits sum {logits.sum().item():.6f} abs-sum {logits.abs().sum().item():.6f} sha256[:16] {sha}; "
                  f"generated {gen[0].tolist()}; file {os.path.getsize(p)} bytes")
            summary[arch] = {"layers": spec["layers"], "moe_layers": moe_layers, "E": E, "E_sub": E2, "top_k": K,
                             "top_k_sub": spec["top_k"], "allowed": allowed,
                             "config_changes": {k: [cfg.get(k), c[k]] for k in c if cfg.get(k) != c[k]},
                             "selftest_identity": st1, "selftest_drop": st2, "round_trip": rt,
                             "group_check": gchk, "logits_sha256_16": sha, "generated_ids": gen[0].tolist(),
                             "loaded": desc, "errors": errs}
            if errs:
                failures.append(arch)
                print("   ERRORS", errs)
            else:
                print("   OK")
        except Exception as e:
            import traceback
            traceback.print_exc()
            failures.append(arch)
            summary[arch] = {"exception": repr(e)[:2000]}
            print("FAIL", arch, repr(e)[:500])
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    json.dump({"versions": versions, "archs": summary}, open(os.path.join(out, "summary.json"), "w"), indent=1,
              default=str)
    print("failures", failures)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
