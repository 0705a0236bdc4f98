/** Errors of the nn layer (serialization, datasets). The base class lives in the engine. */
import { DubitoError } from '../engine/index.js';

/** Bytes or files that do not follow their format (safetensors, dataset caches, ...); names what is wrong. */
export class FormatError extends DubitoError {}
