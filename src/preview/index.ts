/**
 * `mailroom-js/preview`: see every template with its preview data sets, and every email the sandbox
 * captured, in a browser. A node:http handler to mount, or `mailroom preview` from the CLI.
 */

export { type CheckableBrand, checkBrand } from './brand-check.js';
export {
  type CheckableEmail,
  type CheckFinding,
  type CheckName,
  type CheckOptions,
  type CheckReport,
  type CheckSeverity,
  checkEmail,
  GMAIL_CLIP_BYTES,
  SUBJECT_MAX_LENGTH,
} from './checks.js';
export { MAJOR_CLIENTS } from './client-support.js';
export type { PreviewProblem } from './diagnose.js';
export { createPreviewHandler, type PreviewHandler, type PreviewOptions } from './handler.js';
export {
  loadPreviewSources,
  loadTemplatesDir,
  type PreviewSet,
  type PreviewSources,
  type PreviewTemplate,
} from './sources.js';
