#!/usr/bin/env python3
"""Exports the PyTorch parity fixture for dubito's LeNet-5.

Run from the repository root (Debian: `apt-get install python3-torch`, then
`/usr/bin/python3 scripts/export-lenet-fixture.py`). Writes, deterministically for a given torch
version (CPU, fixed seeds):

  test/fixtures/lenet.safetensors     the state_dict (F32), PyTorch names, see below
  test/fixtures/lenet-io.safetensors  `input`    [4,1,28,28] F32 in [0,1) (seeded)
                                      `features` [4,16,5,5]  F32 output of `features` (eval mode)
                                      `logits`   [4,10]      F32 model output in eval mode

The safetensors files are written by hand here (8-byte LE header length, JSON header padded with
spaces to a multiple of 8, tensors back to back) so that no `safetensors` Python package is
needed; `__metadata__` records the torch version, the seed and the layer names.

Model (the demo's LeNet-5), as torch.nn.Sequential blocks; parameter names are the state_dict
keys that dubito's nn module must use when loading it:

  features.0   Conv2d(1, 6, 5, padding=2)   features.0.weight [6,1,5,5]   features.0.bias [6]
  features.1   ReLU
  features.2   MaxPool2d(2)
  features.3   Conv2d(6, 16, 5)             features.3.weight [16,6,5,5]  features.3.bias [16]
  features.4   ReLU
  features.5   MaxPool2d(2)
  (flatten: [N,16,5,5] -> [N,400], row-major C,H,W order, done in forward())
  classifier.0 Linear(400, 120)             classifier.0.weight [120,400] classifier.0.bias [120]
  classifier.1 ReLU
  classifier.2 Linear(120, 84)              classifier.2.weight [84,120]  classifier.2.bias [84]
  classifier.3 ReLU
  classifier.4 Dropout(0.5)                 (identity in eval mode)
  classifier.5 Linear(84, 10)               classifier.5.weight [10,84]   classifier.5.bias [10]

Linear weights are [out, in] (y = x W^T + b); conv weights are [out, in, kh, kw] and conv2d is
cross-correlation, as in PyTorch.

To make the weights less "fresh-init"-like, the model is trained for a few SGD steps on random
images with random labels (seeded) before export.
"""
import json
import os
import struct
import sys

import torch
from torch import nn

SEED = 20240601
TRAIN_STEPS = 8
BATCH = 16
IO_BATCH = 4
OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures')


class LeNet5(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Linear(400, 120),
            nn.ReLU(),
            nn.Linear(120, 84),
            nn.ReLU(),
            nn.Dropout(0.5),
            nn.Linear(84, 10),
        )

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


def write_safetensors(path, tensors, metadata):
    """tensors: list of (name, float32 torch tensor); written in the given order."""
    header = {'__metadata__': metadata}
    blobs = []
    offset = 0
    for name, t in tensors:
        t = t.detach().contiguous().to(torch.float32).cpu()
        blob = t.numpy().astype('<f4').tobytes()
        header[name] = {'dtype': 'F32', 'shape': list(t.shape), 'data_offsets': [offset, offset + len(blob)]}
        offset += len(blob)
        blobs.append(blob)
    raw = json.dumps(header, separators=(',', ':')).encode('utf-8')
    raw += b' ' * ((8 - (8 + len(raw)) % 8) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(raw)))
        f.write(raw)
        for b in blobs:
            f.write(b)


def main():
    torch.manual_seed(SEED)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    model = LeNet5()

    gen = torch.Generator().manual_seed(SEED + 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    model.train()
    for _ in range(TRAIN_STEPS):
        x = torch.rand(BATCH, 1, 28, 28, generator=gen)
        y = torch.randint(0, 10, (BATCH,), generator=gen)
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()

    model.eval()
    x = torch.rand(IO_BATCH, 1, 28, 28, generator=torch.Generator().manual_seed(SEED + 2))
    with torch.no_grad():
        feats = model.features(x)
        logits = model(x)

    state = model.state_dict()
    names = list(state.keys())
    meta = {
        'format': 'pt',
        'model': 'LeNet5 (dubito demo): see scripts/export-lenet-fixture.py',
        'torch_version': torch.__version__,
        'seed': str(SEED),
        'train_steps': str(TRAIN_STEPS),
        'names': ','.join(names),
    }
    os.makedirs(OUT_DIR, exist_ok=True)
    write_safetensors(os.path.join(OUT_DIR, 'lenet.safetensors'), [(k, state[k]) for k in names], meta)
    write_safetensors(
        os.path.join(OUT_DIR, 'lenet-io.safetensors'),
        [('input', x), ('features', feats), ('logits', logits)],
        {'format': 'pt', 'torch_version': torch.__version__, 'seed': str(SEED + 2), 'mode': 'eval'},
    )
    for k in names:
        print(f'{k:22s} {list(state[k].shape)}')
    print('logits[0]:', [round(v, 5) for v in logits[0].tolist()])
    print('loss after training:', float(loss))
    return 0


if __name__ == '__main__':
    sys.exit(main())
