/**
 * Uncertainty toolkit: scores (higher = more uncertain / more OOD), evaluation metrics,
 * temperature scaling, the Mahalanobis detector, the rejection guard, and the Detector protocol
 * with an adapter for every method, `evaluateDetectors` and `guard(detector, ...)`, and the
 * `report` builders (Markdown tables, SVG plots).
 */
export * from './errors.js';
export * from './metrics.js';
export * from './scores.js';
export * from './calibration.js';
export * from './mahalanobis.js';
export * from './guard.js';
export * from './sampling.js';
export * from './ensemble.js';
export * from './odin.js';
export * from './detector.js';
export * from './detectors.js';
export * from './evaluate.js';
/** Markdown tables and SVG plots for evaluation reports (see uncertainty/report/index.ts). */
export * as report from './report/index.js';
export { rowLogsumexp, softmaxRows, classIndexLabels, type LabelProblem, type LabelErrorFactory } from './host.js';
export * from './stage2.js';
export * from './gradient-ood.js';
export * from './attacks.js';
export * from './introspective.js';
export * from './confidnet.js';
export * from './dirichlet.js';
export * from './gradcon.js';
// Bayesian toolbox: Bayesian linear regression, Laplace.
export * from './bayes/index.js';

// Feature-space detectors: kNN, GMM, feature norm, ReAct+energy, ViM, multi-layer Mahalanobis; host linear algebra; bootstrap CIs.
export * from './feature-detectors.js';
export { symmetricEigen, choleskySolve, percentile, logisticRegression } from './linalg-host.js';
export * from './bootstrap.js';

// Conformal prediction and active learning (docs/methods.md, "Conformal prediction", "Active learning").
export * from './conformal.js';
export * from './active-learning.js';

export * from './group-metrics.js';
export * from './bias.js';
export * from './wrap.js';

// generative guards: VAE-loss and WGAN-inverter δz detectors, the conditional classifier
export * from './generative-guards.js';

// riskReport: the whole picture (calibration, OOD, failure prediction, groups, explanations) in one call.
export {
  riskReport, reportLogitsFn, defaultReportDetectors,
  type RiskReport, type RiskReportData, type RiskReportOptions, type RiskReportContext, type RiskReportSectionId, type ReportModel, type ReportSection,
  type ReportSectionHook, type LabeledSet, type CalibrationNumbers, type OodRow, type OodSetResult, type FailureRow, type GroupRow, type GalleryItem,
} from './report/risk-report.js';
