/**
 * Uncertainty toolkit: scores (higher = more uncertain / more OOD), evaluation metrics,
 * temperature scaling, the Mahalanobis detector and the rejection guard.
 */
export * from './metrics.js';
export * from './scores.js';
export * from './calibration.js';
export * from './mahalanobis.js';
export * from './guard.js';
export * from './sampling.js';
export * from './ensemble.js';
export * from './odin.js';
export * from './toy-regression.js';
