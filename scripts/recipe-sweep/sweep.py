# A PyTorch replica of moekit's demo recipe (non-elastic) for a recipe sweep on the GPU: same model shape
# (transformers Qwen3MoeForCausalLM), same corpus (exported by export.mjs), packing, AdamW, WSD; greedy
# exact match on the held-out prompts.
import argparse, base64, gzip, json, math, random, time, sys
import numpy as np, torch
p = argparse.ArgumentParser()
p.add_argument('--name', required=True); p.add_argument('--steps', type=int, default=2000)
p.add_argument('--rows', type=int, default=16); p.add_argument('--T', type=int, default=128)
p.add_argument('--lr', type=float, default=3e-3); p.add_argument('--min_lr', type=float, default=3e-4)
p.add_argument('--warmup', type=int, default=100); p.add_argument('--decay', type=float, default=0.25)
p.add_argument('--hidden', type=int, default=128); p.add_argument('--layers', type=int, default=4)
p.add_argument('--heads', type=int, default=4); p.add_argument('--kv', type=int, default=2)
p.add_argument('--ffn', type=int, default=128); p.add_argument('--experts', type=int, default=16)
p.add_argument('--k', type=int, default=2); p.add_argument('--mix', default='')
p.add_argument('--wd', type=float, default=0.1); p.add_argument('--aux', type=float, default=0.01)
p.add_argument('--eval_at', default=''); p.add_argument('--seed', type=int, default=0)
p.add_argument('--out', required=True); p.add_argument('--corpus', default='tmp/sweep/corpus.json.gz'); p.add_argument('--docmask', type=int, default=0); p.add_argument('--qknorm', type=int, default=1); p.add_argument('--theta', type=float, default=10000)
a = p.parse_args()
torch.manual_seed(a.seed); random.seed(a.seed)
import os; dev = os.environ.get('DEV', 'cuda')
D = json.loads(gzip.open(a.corpus).read())
tasks = list(D.keys())
pools = {}
for t in tasks:
    toks = np.frombuffer(base64.b64decode(D[t]['toks']), dtype=np.uint8)
    st = np.frombuffer(base64.b64decode(D[t]['starts']), dtype=np.uint16).reshape(-1, 2)
    ex, o = [], 0
    for s, n in st.tolist():
        ex.append((toks[o:o+n].astype(np.int64).tolist(), int(s))); o += n
    pools[t] = ex
mix = {t: 1.0 for t in tasks}
for kv in filter(None, a.mix.split(',')):
    k, v = kv.split('='); mix[k] = float(v)
W = np.array([mix[t] for t in tasks]); W = W / W.sum()
rng = np.random.default_rng(a.seed); cursor = {t: 0 for t in tasks}
def next_ex():
    t = tasks[rng.choice(len(tasks), p=W)]
    e = pools[t][cursor[t] % len(pools[t])]; cursor[t] += 1
    return e
carry = None
def row():
    global carry
    ids, mask, seg = [], [], []
    while len(ids) < a.T:
        if carry is not None: e, carry = carry, None
        else: e = next_ex()
        x, s = e
        m = [False] * s + [True] * (len(x) - s)
        if len(x) <= a.T - len(ids): seg += [len(seg) and seg[-1] + 1] * len(x); ids += list(x); mask += list(m); continue
        carry = e; break
    while len(ids) < a.T: ids.append(0); mask.append(False); seg.append(1000 + len(seg))
    return ids, mask, seg
def batch():
    I, M, S = zip(*[row() for _ in range(a.rows)])
    ids = torch.from_numpy(np.array(I, dtype=np.int64)).to(dev); m = torch.from_numpy(np.array(M, dtype=bool)).to(dev)
    tgt = torch.full_like(ids, -100); tgt[:, :-1] = torch.where(m[:, 1:], ids[:, 1:], -100)
    if not a.docmask: return ids, tgt, None
    sg = torch.tensor(S, device=dev); T = ids.shape[1]
    am = (sg[:, :, None] == sg[:, None, :]) & torch.ones(T, T, dtype=torch.bool, device=dev).tril()
    return ids, tgt, am[:, None]

import torch.nn as nn, torch.nn.functional as F
class RMS(nn.Module):
    def __init__(s, d): super().__init__(); s.w = nn.Parameter(torch.ones(d))
    def forward(s, x): return s.w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6))
def rope(x, pos, theta):  # x [B,h,T,d]
    d = x.shape[-1]; inv = 1.0 / (theta ** (torch.arange(0, d, 2, device=x.device).float() / d))
    f = pos[:, None].float() * inv[None]; emb = torch.cat([f, f], -1); c, s_ = emb.cos(), emb.sin()
    x1, x2 = x[..., :d//2], x[..., d//2:]; rot = torch.cat([-x2, x1], -1)
    return x * c + rot * s_
class Layer(nn.Module):
    def __init__(s, H, nh, nkv, E, Fh, k):
        super().__init__(); s.nh, s.nkv, s.hd, s.E, s.k = nh, nkv, H // nh, E, k
        s.n1, s.n2 = RMS(H), RMS(H); s.q = nn.Linear(H, nh * s.hd, bias=False); s.kk = nn.Linear(H, nkv * s.hd, bias=False)
        s.v = nn.Linear(H, nkv * s.hd, bias=False); s.o = nn.Linear(nh * s.hd, H, bias=False); s.qn, s.kn = RMS(s.hd), RMS(s.hd)
        s.router = nn.Linear(H, E, bias=False)
        s.gu = nn.Parameter(torch.randn(E, 2 * Fh, H) * 0.02); s.dn = nn.Parameter(torch.randn(E, H, Fh) * 0.02)
    def forward(s, x, pos, theta, mask):
        B, T, H = x.shape; h = s.n1(x)
        qn, kn = (s.qn, s.kn) if a.qknorm else ((lambda t: t), (lambda t: t))
        q = qn(s.q(h).view(B, T, s.nh, s.hd)).transpose(1, 2); kk = kn(s.kk(h).view(B, T, s.nkv, s.hd)).transpose(1, 2)
        v = s.v(h).view(B, T, s.nkv, s.hd).transpose(1, 2)
        q, kk = rope(q, pos, theta), rope(kk, pos, theta)
        rep = s.nh // s.nkv; kk = kk.repeat_interleave(rep, 1); v = v.repeat_interleave(rep, 1)
        if mask is not None: a_ = F.scaled_dot_product_attention(q, kk, v, attn_mask=mask)
        elif hasattr(F, 'scaled_dot_product_attention'): a_ = F.scaled_dot_product_attention(q, kk, v, is_causal=True)
        else:
            sc = (q @ kk.transpose(-1, -2)) / math.sqrt(s.hd); cm = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
            a_ = torch.softmax(sc.masked_fill(~cm, float('-inf')), -1) @ v
        x = x + s.o(a_.transpose(1, 2).reshape(B, T, -1))
        h = s.n2(x).view(B * T, H)
        p_ = torch.softmax(s.router(h).float(), -1); w, idx = p_.topk(s.k, -1); w = w / w.sum(-1, keepdim=True)
        G = torch.zeros_like(p_).scatter(1, idx, w)
        gu = torch.einsum('nh,efh->enf', h, s.gu); g_, u_ = gu.chunk(2, -1)
        y = torch.einsum('enf,ehf->enh', F.silu(g_) * u_, s.dn)
        out = torch.einsum('enh,ne->nh', y, G.to(y.dtype))
        f = torch.zeros_like(p_).scatter(1, idx, 1.0).mean(0) / s.k
        aux = s.E * (f * p_.mean(0)).sum()
        return x + out.view(B, T, H), aux
class Model(nn.Module):
    def __init__(s, a):
        super().__init__(); s.a = a; s.emb = nn.Embedding(104, a.hidden)
        s.layers = nn.ModuleList([Layer(a.hidden, a.heads, a.kv, a.experts, a.ffn, a.k) for _ in range(a.layers)])
        s.norm = RMS(a.hidden); s.head = nn.Linear(a.hidden, 104, bias=False)
        for n, p_ in s.named_parameters():
            if p_.dim() >= 2: nn.init.normal_(p_, std=0.02)
    def forward(s, ids, pos=None, mask=None):
        B, T = ids.shape; pos = torch.arange(T, device=ids.device) if pos is None else pos
        x = s.emb(ids); aux = 0
        for l in s.layers: x, a_ = l(x, pos, s.a.theta, mask); aux = aux + a_
        return s.head(s.norm(x)), aux / len(s.layers)
model = Model(a).to(dev)
dec = [p_ for n, p_ in model.named_parameters() if p_.dim() >= 2]
nod = [p_ for n, p_ in model.named_parameters() if p_.dim() < 2]
opt = torch.optim.AdamW([{'params': dec, 'weight_decay': a.wd}, {'params': nod, 'weight_decay': 0}], lr=a.lr, betas=(0.9, 0.95), eps=1e-8)
def lr_at(s):
    if s < a.warmup: return a.lr * (s + 1) / a.warmup
    d0 = a.steps * (1 - a.decay)
    if s < d0: return a.lr
    f = (s - d0) / max(1, a.steps - d0); return a.lr + (a.min_lr - a.lr) * f
@torch.no_grad()
def evaluate():
    model.eval(); res = {}
    for t in tasks:
        held = D[t]['held'][:int(os.environ.get('NHELD', 100))]; A = max(len(h[1]) for h in held); ok = 0
        groups = {}
        for pr, an in held: groups.setdefault(len(pr), []).append((pr, an))
        for L, grp in groups.items():
            ids = torch.tensor([g[0] for g in grp], device=dev)
            for _ in range(A):
                lg, _a = model(ids); nxt = lg[:, -1].argmax(-1, keepdim=True); ids = torch.cat([ids, nxt], 1)
            g = ids[:, L:].tolist()
            for i, (pr, an) in enumerate(grp):
                gen = g[i]; gen = gen[:gen.index(2)+1] if 2 in gen else gen
                ok += gen == an
        res[t] = ok / len(held)
    model.train()
    text = [res[t] for t in tasks if D[t]['kind'] == 'text']; img = [res[t] for t in tasks if D[t]['kind'] == 'image']
    return {'text': sum(text)/len(text), 'image': sum(img)/len(img), 'tasks': res}
log = {'args': vars(a), 'evals': [], 'loss': []}
evals = set(int(x) for x in a.eval_at.split(',') if x) | {a.steps}
t0 = time.time(); ema = None
for s in range(a.steps):
    for g in opt.param_groups: g['lr'] = lr_at(s)
    ids, tgt, am = batch()
    logits, aux = model(ids, mask=am)
    ce = torch.nn.functional.cross_entropy(logits.float().view(-1, 104), tgt.view(-1), ignore_index=-100)
    loss = ce + a.aux * aux
    opt.zero_grad(set_to_none=True); loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0); opt.step()
    ema = ce.item() if ema is None else 0.98 * ema + 0.02 * ce.item()
    if s % 100 == 0: log['loss'].append([s, ema])
    if s + 1 in evals:
        e = evaluate(); e['step'] = s + 1; e['time'] = time.time() - t0; log['evals'].append(e)
        print(a.name, s + 1, f"text {e['text']:.3f} image {e['image']:.3f} loss {ema:.4f} t {e['time']:.0f}s", {k: round(v, 2) for k, v in e['tasks'].items()}, flush=True)
        json.dump(log, open(a.out, 'w'))
