/** The built-in emails' names, sorted as `mailroom templates` and the preview list them. */
export const BUILTIN_NAMES = [
  'maintenance-notice',
  'order-confirmation',
  'password-reset',
  'product-update',
  'reminder',
  'security-alert',
  'verification',
  'welcome',
];
