import type { Tensor } from '../../engine/index.js';
import { flatten } from '../../engine/index.js';
import { Module } from '../module.js';
import { Conv2d } from '../layers/conv.js';
import { Dropout } from '../layers/dropout.js';
import { Flatten, Sequential } from '../layers/container.js';
import { Linear } from '../layers/linear.js';
import { MaxPool2d } from '../layers/pooling.js';
import { ReLU } from '../layers/activation.js';

/**
 * LeNet-5 for 28×28 single-channel images (the classifier of `npm run demo` and `npm run eval`):
 * conv 6@5×5 pad 2 → ReLU → maxpool 2 → conv 16@5×5 → ReLU → maxpool 2 → flatten →
 * 400→120 → ReLU → 120→84 → ReLU → dropout → 84→10 (logits).
 *
 * Parameter names follow the PyTorch model in scripts/export-lenet-fixture.py
 * (`features.0`, `features.3`, `classifier.0`, `classifier.2`, `classifier.5`), so its
 * safetensors state dict loads directly.
 */
export class LeNet5 extends Module<[Tensor], Tensor> {
  readonly features: Sequential;
  readonly classifier: Sequential;
  readonly dropout: Dropout;

  constructor(opts: { dropout?: number; numClasses?: number } = {}) {
    super();
    this.features = new Sequential(
      new Conv2d(1, 6, 5, { padding: 2 }), new ReLU(), new MaxPool2d(2),
      new Conv2d(6, 16, 5), new ReLU(), new MaxPool2d(2),
    );
    this.dropout = new Dropout(opts.dropout ?? 0.5);
    this.classifier = new Sequential(
      new Linear(16 * 5 * 5, 120), new ReLU(), new Linear(120, 84), new ReLU(), this.dropout, new Linear(84, opts.numClasses ?? 10),
    );
  }

  /** The 16×5×5 feature maps of the last conv block (Grad-CAM's usual target). */
  featureMaps(x: Tensor): Tensor {
    return this.features.forward(x);
  }

  /** The 84-d penultimate features (Mahalanobis, ConfidNet), before dropout. */
  penultimate(x: Tensor): Tensor {
    const c = this.classifier.children();
    let h = flatten(this.features.forward(x), 1);
    for (let i = 0; i < 4; i++) h = c[i].forward(h);
    return h;
  }

  forward(x: Tensor): Tensor {
    return this.classifier.forward(flatten(this.features.forward(x), 1));
  }

  /** The layers in execution order (used by stacked ensembles). */
  sequentialLayers(): Module[] {
    return [...this.features.children(), new Flatten(), ...this.classifier.children()];
  }
}
