// dubito/explain: visual explanations (Grad-CAM, CounterfactualCAM, ContrastCAM), their
// uncertainty (VOICE), input attributions (gradients, guided backprop, SmoothGrad, Integrated
// Gradients), masking metrics (deletion / insertion) and heatmap images. Every method is batched.
export { type LayerRef, type Targets, NORMALIZE_EPS, resolveLayer, normalizeMaps } from './common.js';
export {
  gradCam, counterfactualCam, contrastCam, voice,
  type CamOptions, type GradCamOptions, type ContrastCamOptions, type VoiceOptions, type VoiceResult,
} from './cam.js';
export { saliency, attributionMap, riemannNodes, withGuidedRelu, type SaliencyOptions, type SaliencyMethod, type RiemannRule } from './saliency.js';
export { deletionCurve, insertionCurve, type MaskingCurve, type MaskingCurveOptions } from './metrics.js';
export {
  colormap, colorize, inputImage, blend, scaleNearest, imageGrid, encodePng, heatmapOverlays, heatmapImages, galleryHtml,
  type RGBImage, type Colormap, type OverlayOptions, type GalleryCell, type GalleryRow,
} from './image.js';
