/**
 * An app's own email, defined in TypeScript with the built-in components: a headline, a greeting,
 * a key-value summary (@details), a callout (@panel) and a button. Its text part reads as aligned
 * lines and "Label:" then the link.
 */
import { defineTemplate } from 'mailroom-js';

export const orderConfirmation = defineTemplate({
  name: 'order-confirmation',
  fields: {
    username: 'string',
    reference: 'string',
    item: 'string',
    amount: 'string',
    delivery: 'string',
    orderUrl: 'url',
    giftNote: 'string?',
  },
  subject: 'Order <%= it.reference %> is confirmed',
  preheader: 'Thanks for your order: here is your summary.',
  html: `<h1>Your order is confirmed</h1>
<%~ include('@greeting', { name: it.username }) %>
<p>Thanks for your order. Here is what happens next.</p>
<%~ include('@details', {
  rows: [
    { label: 'Reference', value: it.reference },
    { label: 'Item', value: it.item },
    { label: 'Delivery', value: it.delivery },
  ],
  total: { label: 'Total paid', value: it.amount },
}) %>
<% if (it.giftNote) { %>
<%~ include('@panel', { tone: 'success', title: 'Gift note', text: it.giftNote }) %>
<% } %>
<%~ include('@button', { url: it.orderUrl, label: 'View your order' }) %>`,
  preview: {
    default: {
      username: 'Jane',
      reference: 'A-1042',
      item: 'Walnut desk lamp',
      amount: '$89.00',
      delivery: 'Thursday, 12 March',
      orderUrl: 'https://acme.example/orders/A-1042',
    },
    gift: {
      username: 'Jane',
      reference: 'A-1043',
      item: 'Linen throw',
      amount: '$64.00',
      delivery: 'Friday, 13 March',
      orderUrl: 'https://acme.example/orders/A-1043',
      giftNote: 'Happy birthday, Sam!',
    },
  },
});
