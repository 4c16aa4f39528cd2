/**
 * The config every `mailroom` command loads (templates, render, send, preview, worker), so that the
 * CLI sees the app's own TypeScript templates and brand. The transport still comes from the
 * environment (the sandbox when nothing is configured, outside production).
 */
import { defineConfig } from 'mailroom-js';
import { orderConfirmation } from './emails/order-confirmation';

export default defineConfig({
  templates: [orderConfirmation],
  appName: 'Acme',
  brand: {
    url: 'https://acme.example',
    company: 'Acme Inc.',
    address: '1 Market Street, San Francisco, CA 94105',
    supportUrl: 'https://acme.example/help',
    colors: { primary: '#0B6E4F' },
    // A dark green is unreadable on the dark card (2.67:1): a lighter one for dark mode (6.58:1).
    darkColors: { primary: '#3FB950' },
  },
});
