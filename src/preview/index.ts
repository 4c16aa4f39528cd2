/**
 * `mailroom-js/preview`: see every template with its preview data sets, and every email the sandbox
 * captured, in a browser. A node:http handler to mount, or `mailroom preview` from the CLI.
 */

export type { PreviewProblem } from './diagnose.js';
export { createPreviewHandler, type PreviewHandler, type PreviewOptions } from './handler.js';
export {
  loadPreviewSources,
  loadTemplatesDir,
  type PreviewSet,
  type PreviewSources,
  type PreviewTemplate,
} from './sources.js';
