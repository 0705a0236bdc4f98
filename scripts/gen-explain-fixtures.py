#!/usr/bin/env python3
"""Golden values for explain/ (test/explain-golden.test.ts), computed with PyTorch in float64.

Usage:
  /usr/bin/python3 scripts/gen-explain-fixtures.py   # writes test/fixtures/explain/golden.json

Requires torch (Debian: apt-get install python3-torch). The library and the tests never run
Python: the JSON is committed.

Network (a torch.nn.Sequential, so its state-dict keys are dubito's Sequential names):
  0 Conv2d(1,3,3,pad 1) 1 ReLU 2 MaxPool2d(2) 3 Conv2d(3,4,3) 4 ReLU 5 Flatten
  6 Linear(64,10) 7 ReLU 8 Linear(10,5)
on 9×9 single-channel inputs; the CAM target layer is '4' (the second ReLU, output [B,4,4,4]),
upsampled 4 → 9 (a non-integer factor).
Weights and inputs are seeded normals (torch.manual_seed(13)), rounded to float32 values so the
WebGPU run sees the same numbers.

Every method is written out here from its definition, independently of dubito's code:
  Grad-CAM      α = mean_{ij} ∂z_t/∂A, map = ReLU(Σ_c α_c A_c), bilinear (align_corners=False)
                upsample to 9×9, then (m − min)/(max − min + 1e-7) per map
  Counterfactual  α negated
  ContrastCAM   J = CE(z, Q) (sum over the batch), default Q = the second-highest logit
  VOICE         per input, ContrastCAM for every Q ≠ P (a Python loop, one backward each),
                uncertainty = normalise(population variance across Q); SNR = mean/std;
                IoU of (u > 0.1) with (Grad-CAM > 0.1)
  saliency      gradient, gradient × input, guided backprop (ReLU backward clamped ≥ 0 by a hook)
  IG            midpoint Riemann rule, 16 steps, baseline 0: (x − x′)·(1/m)Σ_k ∇z_t(x′ + (k+½)/m (x − x′))
"""
import json
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(13)
torch.set_default_dtype(torch.float64)
EPS = 1e-7


def net():
    return nn.Sequential(
        nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(),
        nn.Linear(64, 10), nn.ReLU(), nn.Linear(10, 5),
    )


model = net()
with torch.no_grad():
        for name, p in model.named_parameters():
            scale = 0.6 if name.endswith('weight') else 0.3
            p.copy_((torch.randn_like(p) * scale + (0.1 if name.endswith('bias') else 0.0)).float().double())
model.eval()
B = 4
x = torch.rand(B, 1, 9, 9).float().double()
x[3] = x[3].flip(-1) * 0.7  # a fourth, different-looking input


def normalise(m):
    lo = m.flatten(1).min(1).values.view(-1, 1, 1)
    hi = m.flatten(1).max(1).values.view(-1, 1, 1)
    return (m - lo) / (hi - lo + EPS)


def activation_and_logits(inp):
    a = model[:5](inp)
    a = a.detach().requires_grad_(True)
    return a, model[5:](a)


def cam_from(a, objective, negate=False, size=(9, 9)):
    (g,) = torch.autograd.grad(objective, [a])
    alpha = g.mean(dim=(2, 3), keepdim=True)
    if negate:
        alpha = -alpha
    m = F.relu((alpha * a).sum(1)).detach()
    up = F.interpolate(m.unsqueeze(1), size=size, mode='bilinear', align_corners=False).squeeze(1)
    return m, normalise(up)


def gradcam(inp, target, negate=False):
    a, z = activation_and_logits(inp)
    return cam_from(a, z.gather(1, target.view(-1, 1)).sum(), negate)


def contrastcam(inp, q):
    a, z = activation_and_logits(inp)
    return cam_from(a, F.cross_entropy(z, q, reduction='sum'))


with torch.no_grad():
    logits = model(x)
pred = logits.argmax(1)
runner = logits.topk(2, dim=1).indices[:, 1]
explicit_t = torch.tensor([2, 0, 4, 1])
explicit_q = torch.tensor([(int(p) + 2) % 5 for p in pred])

gc_raw, gc = gradcam(x, pred)
_, gc_t = gradcam(x, explicit_t)
_, cf = gradcam(x, pred, negate=True)
_, cc = contrastcam(x, runner)
_, cc_q = contrastcam(x, explicit_q)

# VOICE, the slow way: one backward per input and contrast class.
K = 5
voice_maps, voice_unc, voice_snr, voice_iou, voice_q = [], [], [], [], []
for b in range(B):
    xb = x[b:b + 1]
    p = int(pred[b])
    qs = [(p + j) % K for j in range(1, K)]
    maps = torch.cat([contrastcam(xb, torch.tensor([q]))[1] for q in qs])  # [K-1, 9, 9]
    u = normalise(maps.var(0, unbiased=False).unsqueeze(0))[0]
    e = gc[b]
    snr = (u.mean() / u.std(unbiased=False)).item() if u.std(unbiased=False) > 0 else 0.0
    ua, ea = u > 0.1, e > 0.1
    union = (ua | ea).sum().item()
    iou = (ua & ea).sum().item() / union if union else 0.0
    voice_maps.append(maps.tolist())
    voice_unc.append(u.tolist())
    voice_snr.append(snr)
    voice_iou.append(iou)
    voice_q.append(qs)


def input_grad(inp, target, guided=False):
    handles = []
    if guided:
        for m in model.modules():
            if isinstance(m, nn.ReLU):
                handles.append(m.register_full_backward_hook(lambda mod, gin, gout: (gin[0].clamp(min=0),)))
    xi = inp.clone().requires_grad_(True)
    z = model(xi)
    (g,) = torch.autograd.grad(z.gather(1, target.view(-1, 1)).sum(), [xi])
    for h in handles:
        h.remove()
    return g


grad = input_grad(x, pred)
guided = input_grad(x, pred, guided=True)
m_steps = 16
alphas = [(k + 0.5) / m_steps for k in range(m_steps)]
ig = torch.zeros_like(x)
for a in alphas:
    ig += input_grad(a * x, pred) / m_steps
ig *= x
with torch.no_grad():
    ig_delta = (model(x).gather(1, pred.view(-1, 1)) - model(torch.zeros_like(x)).gather(1, pred.view(-1, 1))).view(-1)

out = {
    'note': 'generated by scripts/gen-explain-fixtures.py (PyTorch %s, float64)' % torch.__version__,
    'layer': '4',
    'state_dict': {k: {'shape': list(v.shape), 'data': v.flatten().tolist()} for k, v in model.state_dict().items()},
    'x': {'shape': list(x.shape), 'data': x.flatten().tolist()},
    'logits': logits.tolist(),
    'pred': pred.tolist(),
    'runner_up': runner.tolist(),
    'explicit_target': explicit_t.tolist(),
    'explicit_contrast': explicit_q.tolist(),
    'gradcam_raw': gc_raw.tolist(),
    'gradcam': gc.tolist(),
    'gradcam_target': gc_t.tolist(),
    'counterfactual': cf.tolist(),
    'contrastcam': cc.tolist(),
    'contrastcam_q': cc_q.tolist(),
    'voice': {'contrast': voice_q, 'maps': voice_maps, 'uncertainty': voice_unc, 'snr': voice_snr, 'iou': voice_iou},
    'saliency': {
        'gradient': grad.tolist(), 'gradient_x_input': (grad * x).tolist(), 'guided': guided.tolist(),
        'ig_steps': m_steps, 'ig': ig.tolist(), 'ig_delta': ig_delta.tolist(),
    },
}
path = os.path.join(os.path.dirname(__file__), '..', 'test', 'fixtures', 'explain', 'golden.json')
os.makedirs(os.path.dirname(path), exist_ok=True)
with open(path, 'w') as f:
    json.dump(out, f)
    f.write('\n')
print('wrote', os.path.relpath(path))
