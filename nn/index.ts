// dubito/nn: modules, layers, losses, optimisers and a training loop, with PyTorch's names and
// default initialisations.
export { Module, parameter, buffer, isParameter, isBuffer, capture, type Capture, type HookHandle, type ForwardHook, type ForwardPreHook, type BackwardHook, type StateDict, type LoadStateDictOptions, type LoadStateDictResult } from './module.js';
export { assignInPlace } from './assign.js';
export { FormatError } from './errors.js';
export * as nnInit from './init.js';
export { calculateGain, fanInAndFanOut, kaimingUniform, kaimingNormal, xavierUniform, xavierNormal, uniformInit, normalInit, type ParamInitOptions, type KaimingOptions, type Nonlinearity } from './init.js';
export { Linear, type LinearOptions } from './layers/linear.js';
export { Conv2d, ConvTranspose2d, type Conv2dLayerOptions, type ConvTranspose2dLayerOptions, type Pair } from './layers/conv.js';
export { MaxPool2d, AvgPool2d, AdaptiveAvgPool2d } from './layers/pooling.js';
export { ReLU, GELU, Tanh, Sigmoid, Softplus, LeakyReLU, Softmax, LogSoftmax, Identity } from './layers/activation.js';
export { Dropout, enableMCDropout } from './layers/dropout.js';
export { BatchNorm1d, BatchNorm2d, type BatchNormOptions } from './layers/batchnorm.js';
export { Sequential, ModuleList, Flatten, type FusableLayer, type FusedActivation } from './layers/container.js';
export { LayerNorm, layerNorm, type LayerNormOptions } from './layers/layernorm.js';
export { GroupNorm, groupNorm, type GroupNormOptions } from './layers/groupnorm.js';
export { Embedding, embedding, type EmbeddingOptions, type EmbeddingLayerOptions } from './layers/embedding.js';
export { Upsample, type UpsampleOptions } from './layers/upsample.js';
export { checkClassTargets } from './labels.js';
export * from './losses.js';
export * from './optim/index.js';
export { DataLoader, type DataLoaderOptions, type HostArray } from './data/loader.js';
export { WeightedSampler, ClassBalancedSampler, classBalancedWeights, classWeights, type Sampler, type WeightedSamplerOptions, type ClassBalancedSamplerOptions } from './data/samplers.js';
export { seededPermutation, sortKeyPermutation } from './data/permutation.js';
export { fit, evaluate, type FitOptions, type EpochInfo, type BatchInfo, type LossFn } from './train.js';
export { LeNet5 } from './models/lenet.js';
export { perSampleGrads, perSampleGradNorms, perSampleGradUnitNorms, withLayerGradients, type PerSampleUnitNorms, type LayerGradients, type PerSampleLoss, type PerSampleOptions, type PerSampleNorms, type NormMethod } from './per-sample-grads.js';
// Variational (Bayes by backprop) layers.
export {
  LinearVariational, Conv2dVariational, accumulatedKl, elboLoss, gaussianKl, reparameterise, isVariational, variationalLogits, variationalProbs,
  type VariationalOptions, type Conv2dVariationalOptions, type NoiseStream, type VariationalPredictiveOptions,
} from './layers/variational.js';

export { invertImages, rotateImages, rotateImagesBy, rotationTaps, contrastImages, gaussianBlur, gaussianKernel, gaussianNoiseImages, uniformNoiseImages, type NoiseImageOptions } from './data/shifts.js';

// generative guards: the VAE and the WGAN-GP generator / critic / inverter
export { VAE, vaeLoss, type VaeOptions, type VaeOutput } from './models/vae.js';
export { WganGenerator, WganCritic, WganInverter, gradientPenalty, criticLoss, generatorLoss, inverterLoss, clipCriticWeights, type WganOptions } from './models/wgan.js';
