export { Optimizer, clipGradNorm, type CompiledStep, type ParamState, type ParamGroup, type ParamsArg, type OptimizerStateDict } from './optimizer.js';
export { SGD, type SGDOptions } from './sgd.js';
export { Adam, AdamW, type AdamOptions } from './adam.js';
export { LRScheduler, StepLR, CosineAnnealingLR } from './lr-scheduler.js';
