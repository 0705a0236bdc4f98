/** The Bayesian toolbox: closed-form Bayesian linear regression and the Laplace approximation. */
export * from './linear-regression.js';
export * from './laplace.js';
export { SingularMatrixError } from './linalg.js';
export * from './detectors.js';
