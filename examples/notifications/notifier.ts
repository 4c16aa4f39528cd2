/**
 * Notifications with categories and preferences: a product update sent to every user in one
 * batch (each user's choice respected), and a security alert that always goes out.
 */
import { defineTemplate, type EmailService, type PreferenceStore } from 'mailroom-js';

/** A product update: `product` mail, which a user can turn off. */
export const productUpdate = defineTemplate({
  name: 'product-update-note',
  category: 'product',
  fields: { username: 'string', feature: 'string', url: 'url' },
  subject: 'New in Acme: <%= it.feature %>',
  html: `
    <h1><%= it.feature %> is here</h1>
    <%~ include('@greeting', { name: it.username }) %>
    <p>We just shipped <%= it.feature %>. Here is how to try it.</p>
    <%~ include('@button', { url: it.url, label: 'Try it now' }) %>`,
});

/** A new sign-in: `security` mail, never held back by a preference or the suppression list. */
export const newSignIn = defineTemplate({
  name: 'new-sign-in-note',
  category: 'security',
  fields: { username: 'string', device: 'string', url: 'url' },
  subject: 'New sign-in to your Acme account',
  html: `
    <h1>New sign-in</h1>
    <%~ include('@greeting', { name: it.username }) %>
    <p>Someone signed in to your account from <%= it.device %>.</p>
    <%~ include('@button', { url: it.url, label: 'This wasn\\'t me' }) %>`,
});

export interface User {
  email: string;
  name: string;
}

/** The app's notifications, on a service built with `templates: [productUpdate, newSignIn]` and `preferences`. */
export function createNotifier(mail: EmailService, preferences: PreferenceStore) {
  return {
    /** A user's choice from the settings page. */
    setProductUpdates: (email: string, wanted: boolean) =>
      preferences.set(email, 'product', wanted, { source: 'settings-page' }),

    /** One update to every user; returns who got it, who opted out and who failed. */
    async announce(users: readonly User[], feature: string, url: string) {
      const result = await mail.sendBatch(
        productUpdate,
        users.map((user) => ({ to: user.email, data: { username: user.name, feature, url } })),
        { concurrency: 10 },
      );
      const by = (status: string) =>
        result.outcomes.filter((o) => o.status === status).map((o) => users[o.index]!.email);
      return { sent: by('sent'), optedOut: by('suppressed'), failed: by('failed') };
    },

    alert: (user: User, device: string) =>
      mail.sendTemplate(newSignIn, {
        to: user.email,
        data: { username: user.name, device, url: 'https://acme.example/security' },
      }),
  };
}
