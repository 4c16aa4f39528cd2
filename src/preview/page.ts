/**
 * The preview page: one HTML document with its stylesheet and script inline (allowed by a
 * per-response nonce, nothing else). Every value from a template or an email is put in with
 * `textContent`; email HTML only ever goes into a sandboxed iframe, loaded from the server.
 * Every sidebar entry is made by one function, `sidebarItem`, so a badge or a line is added there.
 */
import { CHECKS_PANEL, CHECKS_SCRIPT, CHECKS_STYLE } from './checks-view.js';
import { EDITOR_BUTTON, EDITOR_NEW, EDITOR_PANEL, EDITOR_SCRIPT, EDITOR_STYLE } from './editor-view.js';
import { STYLE } from './page-style.js';

const SCRIPT = `
const $ = (s) => document.querySelector(s);
const el = (tag, { dataset = {}, ...props } = {}, ...children) => {
  const e = Object.assign(document.createElement(tag), props);
  Object.assign(e.dataset, dataset);
  e.append(...children);
  return e;
};
const narrow = matchMedia('(max-width: 760px)');
const state = { kind: 'template', name: null, set: null, locale: null, width: narrow.matches ? 'mobile' : 'desktop', tab: 'html', scheme: 'light', search: '' };
let templates = [];
/** Whether this page may edit templates ({ allowed, why?, canCreate }), from the server. */
let editing = { allowed: false, canCreate: false };
let hold = { enabled: false, emails: [], sendsThrough: '' };
// The token comes once in the address (?token=…) and is kept for this tab only.
const token = (() => {
  const given = new URLSearchParams(location.search).get('token');
  if (given) sessionStorage.setItem('mailroom-token', given);
  return given || sessionStorage.getItem('mailroom-token') || '';
})();
async function post(url, body) {
  const r = await fetch(url, { method: 'POST', cache: 'no-store', headers: { 'content-type': 'application/json', 'x-mailroom-token': token }, body: JSON.stringify(body) });
  const answer = await r.json().catch(() => ({ error: { message: url + ': ' + r.status } }));
  if (!r.ok) throw new Error((answer.error && answer.error.message) || url + ': ' + r.status);
  return answer;
}
const RELEASE_WORDS = { 'already-released': 'already released, not sent again', discarded: 'discarded earlier, not sent', busy: 'another release of it is under way', interrupted: 'an earlier release was interrupted and may have been delivered: check before releasing it again', 'not-found': 'no such held email' };
const DISCARD_WORDS = { discarded: 'discarded', 'already-discarded': 'already discarded', released: 'already released, cannot be discarded', busy: 'another release of it is under way', interrupted: 'an earlier release was interrupted', 'not-found': 'no such held email' };
function outcomeText(action, r) {
  if (r.outcome === 'released') {
    const res = r.record.result;
    return 'Released to ' + res.accepted.join(', ') + ' via ' + res.transport + (res.rejected.length ? ' (refused: ' + res.rejected.join(', ') + ')' : '');
  }
  if (r.outcome === 'failed') return 'Not released, still held (' + r.error.code + '): ' + r.error.message;
  return (action === 'discard' ? DISCARD_WORDS : RELEASE_WORDS)[r.outcome] || r.outcome;
}
function historyText(h) {
  const when = new Date(h.at).toLocaleString();
  if (h.action === 'discard') return when + ': discarded';
  if (h.error) return when + ': release to ' + h.to.join(', ') + ' failed: ' + h.error.message;
  return when + ': released to ' + h.result.accepted.join(', ') + ' via ' + h.result.transport + ' (' + h.result.messageId + ')';
}
async function act(action) {
  const line = $('#action-result');
  line.className = '';
  line.textContent = 'Working…';
  // One request at a time from this page; the server sends an email once whatever comes in.
  const buttons = [...document.querySelectorAll('[data-action]')];
  for (const b of buttons) b.disabled = true;
  try {
    if (action === 'verify') {
      const answer = await fetch('api/settings/verify', { method: 'POST', cache: 'no-store', headers: { 'content-type': 'application/json', 'x-mailroom-token': token }, body: '{}' }).then((r) => r.json());
      if (answer.ok) line.textContent = (answer.verified ? 'Connection verified: ' : 'Nothing to verify for ') + answer.transport;
      else {
        line.textContent = 'Verify failed' + (answer.error.code ? ' (' + answer.error.code + ')' : '') + ': ' + answer.error.message;
        line.className = 'error';
      }
    } else if (action === 'delete') {
      const { results } = await post('api/outbox/delete', { ids: [state.name] });
      const r = results[0];
      if (r.outcome === 'deleted') {
        line.textContent = 'Deleted.';
        Object.assign(state, { kind: 'template', name: null, set: null });
      } else {
        line.textContent = r.outcome === 'held' ? 'Still held: release or discard it before deleting it.' : 'No such email.';
        line.className = 'error';
      }
    } else if (action === 'send-test') {
      const { result } = await post('api/send', { template: state.name, set: state.set, to: $('#test-to').value, ...(state.locale ? { locale: state.locale } : {}) });
      line.textContent = result.held
        ? 'Held for ' + result.accepted.join(', ') + ', not delivered yet: it is in the outbox as ' + result.held
        : (result.captures ? 'Captured for ' : 'Sent to ') + result.accepted.join(', ') + ' via ' + result.transport;
      const missed = result.rejected.concat(result.deferred);
      if (missed.length) {
        line.textContent += ' (not sent to ' + missed.join(', ') + ')';
        line.className = 'error';
      }
    } else {
      const body = { ids: action === 'release-all' ? 'all' : [state.name] };
      if (action === 'release-to') body.to = $('#release-to').value;
      const { results } = await post(action === 'discard' ? 'api/hold/discard' : 'api/hold/release', body);
      const kind = action === 'discard' ? 'discard' : 'release';
      line.textContent = results.length ? results.map((r) => (results.length > 1 ? r.id + ': ' : '') + outcomeText(kind, r)).join('; ') : 'Nothing is held.';
      // Already released (by another click or person) is where the email should be: not an error.
      const done = kind === 'discard' ? ['discarded', 'already-discarded'] : ['released', 'already-released'];
      line.className = results.some((r) => !done.includes(r.outcome)) ? 'error' : '';
    }
  } catch (error) {
    line.textContent = error.message;
    line.className = 'error';
  } finally {
    for (const b of buttons) b.disabled = false;
  }
  await refresh(true);
}

function readHash() {
  const [kind, name, set] = decodeURIComponent(location.hash.slice(1)).split('/');
  if (kind === 'template' || kind === 'email') Object.assign(state, { kind, name: name || null, set: set || null });
  if (kind === 'settings') state.kind = 'settings';
}
function writeHash() {
  const parts = state.kind === 'template' ? ['template', state.name, state.set] : state.kind === 'settings' ? ['settings'] : ['email', state.name];
  history.replaceState(null, '', '#' + parts.map(encodeURIComponent).join('/'));
}
/** "Deutsch (de)": a language in its own words, and its tag. */
function localeName(tag) {
  try { return new Intl.DisplayNames([tag], { type: 'language' }).of(tag) + ' (' + tag + ')'; } catch { return tag; }
}
/** The JSON at \`url\`; a status other than 200 throws an Error carrying it as \`status\`. */
async function getJson(url) {
  const r = await fetch(url, { cache: 'no-store' });
  if (!r.ok) throw Object.assign(new Error(url + ': ' + r.status), { status: r.status });
  return r.json();
}

const unanswered = (error) => ({ message: 'The preview server did not answer (' + error.message + '). Reload the page once it runs again.' });
/**
 * Reloads the lists, then shows what \`state\` names. A server that does not answer (stopped, or
 * restarting) is said on the page, never left as an unhandled rejection and a stale page.
 */
function refresh(reload = false) {
  return loadLists().then(() => show(reload), (error) => {
    document.body.dataset.view ||= state.kind;
    showProblem(unanswered(error));
  });
}

async function loadLists() {
  const [list, outbox, held] = await Promise.all([getJson('api/templates'), getJson('api/outbox'), getJson('api/hold')]);
  templates = list.templates;
  editing = list.editing;
  state.locale ??= list.locales.default;
  $('#locale').replaceChildren(...list.locales.available.map((l) => el('option', { value: l, textContent: localeName(l), selected: l === state.locale })));
  hold = held;
  const status = new Map(hold.emails.map((e) => [e.id, e.status]));
  $('#release-all').hidden = !hold.emails.some((e) => e.status === 'held');
  $('#templates').replaceChildren(...templates.map((t) => sidebarItem({ kind: 'template', name: t.name, label: t.name, badges: t.builtin ? [{ text: 'built-in' }] : [] })));
  $('#load-problems').replaceChildren(...list.problems.map((p) => el('p', { className: 'empty', textContent: (p.template ? p.template + ': ' : '') + p.message })));
  $('#outbox').replaceChildren(...outbox.map((m) => sidebarItem({
    kind: 'email', name: m.id, label: m.subject || '(no subject)',
    badges: status.has(m.id) ? [{ text: status.get(m.id), className: status.get(m.id) }] : [],
    meta: m.to.join(', ') + ' · ' + new Date(m.date).toLocaleString(),
    search: [m.subject, m.to.join(' '), m.template || ''].join(' '),
  })));
  $('#outbox-empty').hidden = outbox.length > 0;
  filterOutbox();
  if (!state.name && state.kind === 'template' && templates[0]) Object.assign(state, { kind: 'template', name: templates[0].name, set: null });
  document.dispatchEvent(new CustomEvent('mailroom:lists'));
}

/**
 * One sidebar entry: a template or a captured email. \`badges\` are small labels after its name
 * ({ text, className?, title? }); \`meta\` a muted second line; \`search\` what the outbox search matches.
 */
function sidebarItem({ kind, name, label, badges = [], meta, search }) {
  const button = el('button', { type: 'button', dataset: kind === 'template' ? { template: name } : { email: name } },
    el('span', { className: 'label', textContent: label }),
    ...badges.map((b) => el('span', { className: 'badge' + (b.className ? ' ' + b.className : ''), textContent: b.text, ...(b.title ? { title: b.title } : {}) })),
    ...(meta ? [el('span', { className: 'meta', textContent: meta })] : []));
  return el('li', { dataset: search === undefined ? {} : { search: search.toLowerCase() } }, button);
}

/** The outbox search: every word typed must appear in the subject, a recipient or the template name. */
function filterOutbox() {
  const words = state.search.toLowerCase().split(/\\s+/).filter(Boolean);
  let shown = 0;
  for (const li of document.querySelectorAll('#outbox li')) {
    li.hidden = !words.every((w) => li.dataset.search.includes(w));
    if (!li.hidden) shown++;
  }
  $('#outbox-none').hidden = shown > 0 || words.length === 0 || !document.querySelector('#outbox li');
}

/** Sizes the frame to its document: no scroll bar inside it, the footer always in view. */
function fitFrame() {
  const frame = $('#frame');
  const doc = frame.contentDocument;
  // Before the first email arrives the frame holds an empty about:blank: sizing to it would flash a 0 px frame.
  if (frame.hidden || !doc || !doc.documentElement || doc.URL === 'about:blank') return;
  const borders = frame.offsetHeight - frame.clientHeight;
  // Measured at height 0, so a frame taller than its email shrinks to it (scrollHeight never goes below the frame).
  frame.style.height = '0px';
  frame.style.height = doc.documentElement.scrollHeight + borders + 'px';
}

function showSettings(view) {
  showProblem(view.problem);
  $('#title').textContent = 'Settings';
  $('#settings-groups').replaceChildren(...(view.groups ?? []).flatMap((g) => [
    el('h3', { textContent: g.title }),
    el('table', {}, ...g.settings.map((s) => el('tr', {},
      el('th', { textContent: s.name }),
      el('td', { className: 'value' + (s.secret ? ' secret' : ''), textContent: s.value ?? '—' }),
      el('td', { className: 'source', textContent: s.source + (s.from ? ' (' + s.from + ')' : '') })))),
  ]));
}

function showProblem(problem) {
  const box = $('#problem');
  box.hidden = !problem;
  if (!problem) return;
  const where = [problem.file, problem.line && 'line ' + problem.line].filter(Boolean).join(', ');
  box.replaceChildren(el('strong', { textContent: (problem.template ? 'Template "' + problem.template + '"' : 'Problem') + (problem.field ? ', field ' + problem.field : '') }), el('div', { textContent: problem.message }), ...(where ? [el('code', { textContent: where })] : []));
}

/** What \`state\` names, from the server: the settings, a captured email, or a template rendered. */
async function fetchView() {
  if (state.kind === 'settings') return getJson('api/settings');
  if (state.kind === 'email') {
    return getJson('api/outbox/' + encodeURIComponent(state.name)).catch((error) => {
      if (error.status !== 404) throw error;
      // Deleted from another window, or the outbox cleared, while it was open (or a stale link).
      return { missing: true, problem: { message: 'This email is not in the outbox: it was deleted, or the outbox was cleared.' } };
    });
  }
  const t = templates.find((x) => x.name === state.name);
  if (!t) return { problem: { message: 'No such template: ' + state.name } };
  if (!state.set || !t.sets.includes(state.set)) state.set = t.sets[0];
  return getJson('api/templates/' + encodeURIComponent(t.name) + '/' + encodeURIComponent(state.set) + '?locale=' + encodeURIComponent(state.locale ?? ''));
}

function showTemplate() {
  const t = templates.find((x) => x.name === state.name);
  $('#title').textContent = state.name;
  $('#set').replaceChildren(...(t ? t.sets : []).map((s) => el('option', { value: s, textContent: s, selected: s === state.set })));
  $('#set').hidden = !t;
  $('#sends-through').textContent = 'through ' + hold.sendsThrough;
}

function showEmail(view) {
  $('#title').textContent = view.missing ? 'No such email' : view.subject || '(no subject)';
  $('#download').hidden = Boolean(view.missing);
  $('#email-panel').hidden = Boolean(view.missing);
  $('#download').href = 'eml/' + encodeURIComponent(state.name) + '.eml';
  $('#attachments').replaceChildren(...(view.attachments ?? []).map((a) => el('li', {},
    el('a', { href: a.href, download: a.filename, textContent: a.filename }),
    el('span', { className: 'meta', textContent: a.contentType }),
    el('span', { className: 'meta', textContent: size(a.size) }))));
  $('#attachments-title').textContent = view.attachments && view.attachments.length ? 'Attachments (' + view.attachments.length + ')' : 'No attachments';
  const held = view.hold;
  $('#hold').hidden = !held;
  if (!held) return;
  $('#hold-status').textContent = held.status === 'held' ? 'Held: not delivered yet' : held.status === 'released' ? 'Released' : 'Discarded';
  $('#hold-note').textContent = held.interrupted ? 'An earlier release was interrupted and may have been delivered: check before releasing it again.' : held.busy ? 'A release is under way.' : '';
  for (const b of document.querySelectorAll('#hold button, #release-to')) b.disabled = held.status !== 'held';
  $('#hold-history').replaceChildren(...held.history.map((h) => el('li', { textContent: historyText(h) })));
}

/** The email itself, a template's or a captured one: problem, subject, frame, text, source, headers. */
function showMessage(view, reload) {
  showProblem(view.problem);
  $('#subject').textContent = view.subject ? 'Subject: ' + view.subject : '';
  const frame = $('#frame');
  const src = view.frame && view.frame + (view.frame.includes('?') ? '&' : '?') + 'scheme=' + state.scheme;
  if (src && (reload || frame.dataset.src !== src)) { frame.dataset.src = src; frame.src = src + '&t=' + Date.now(); }
  frame.className = state.width + ' ' + state.scheme;
  $('#text').textContent = view.text ?? '(no text part)';
  $('#source').textContent = view.html ?? '(no HTML part)';
  $('#headers').replaceChildren(...(view.headers ?? []).map(([k, v]) => el('tr', {}, el('th', { textContent: k }), el('td', { textContent: v }))));
  $('#stage').hidden = Boolean(view.problem);
  for (const [name, node] of [['html', frame], ['text', $('#text')], ['source', $('#source')], ['headers', $('#headers')]]) node.hidden = state.tab !== name;
  for (const b of document.querySelectorAll('[data-tab]')) b.setAttribute('aria-pressed', String(b.dataset.tab === state.tab));
  for (const b of document.querySelectorAll('[data-width]')) b.setAttribute('aria-pressed', String(b.dataset.width === state.width));
  for (const b of document.querySelectorAll('[data-scheme]')) b.setAttribute('aria-pressed', String(b.dataset.scheme === state.scheme));
  fitFrame();
}

let shows = 0;
let reloadWanted = false;
/**
 * Shows what \`state\` names, once the server has answered, all at once. Which view an element
 * belongs to is decided here alone: the body's data-view against the element's data-for (see the
 * style); an element's own \`hidden\` only says whether it has something to show. A show overtaken
 * by a newer one is dropped (its reload carried over), so the last click wins.
 */
async function show(reload = false) {
  const ticket = ++shows;
  reloadWanted ||= reload;
  const kind = state.kind;
  const view = await fetchView().catch((error) => ({ problem: unanswered(error) }));
  if (ticket !== shows) return;
  document.body.dataset.view = kind;
  if (kind === 'settings') showSettings(view);
  else {
    if (kind === 'template') showTemplate();
    else showEmail(view);
    showMessage(view, reloadWanted);
  }
  reloadWanted = false;
  writeHash();
  markCurrent();
  document.dispatchEvent(new CustomEvent('mailroom:show', { detail: { kind, name: kind === 'settings' ? null : state.name, set: state.set, problem: Boolean(view.problem), missing: Boolean(view.missing) } }));
}

function markCurrent() {
  for (const b of document.querySelectorAll('aside li > button')) b.setAttribute('aria-current', String(b.dataset.template === state.name && state.kind === 'template' || b.dataset.email === state.name && state.kind === 'email' || b.dataset.settings !== undefined && state.kind === 'settings'));
}

function size(bytes) {
  return bytes < 1024 ? bytes + ' B' : bytes < 1048576 ? (bytes / 1024).toFixed(1) + ' KB' : (bytes / 1048576).toFixed(1) + ' MB';
}

document.addEventListener('click', (event) => {
  const b = event.target.closest('button');
  if (!b) return;
  if (b.dataset.action) return void act(b.dataset.action);
  if (b.id === 'menu') return void setMenu(!document.body.classList.contains('menu-open'));
  if (b.dataset.template) Object.assign(state, { kind: 'template', name: b.dataset.template, set: null });
  else if (b.dataset.email) Object.assign(state, { kind: 'email', name: b.dataset.email });
  else if (b.dataset.settings !== undefined) state.kind = 'settings';
  else if (b.dataset.tab) state.tab = b.dataset.tab;
  else if (b.dataset.width) state.width = b.dataset.width;
  else if (b.dataset.scheme) state.scheme = b.dataset.scheme;
  else return;
  // On a phone the lists cover the page: choosing an entry closes them.
  if (b.closest('aside')) setMenu(false);
  show();
});
function setMenu(open) {
  document.body.classList.toggle('menu-open', open);
  $('#menu').setAttribute('aria-expanded', String(open));
}
$('#set').addEventListener('change', (event) => { state.set = event.target.value; show(); });
$('#locale').addEventListener('change', (event) => { state.locale = event.target.value; show(); });
$('#outbox-search').addEventListener('input', (event) => { state.search = event.target.value; filterOutbox(); });
$('#frame').addEventListener('load', fitFrame);
// A link or a typed address to #settings, #email/… opens it without reloading the page.
addEventListener('hashchange', () => { readHash(); show(); });
addEventListener('resize', fitFrame);

readHash();
refresh();
const events = new EventSource('events');
events.addEventListener('change', () => refresh(true));
`;

/** The page, with `nonce` on its inline style and script. */
export function page(nonce: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>mailroom preview</title>
<link rel="icon" href="data:,">
<style nonce="${nonce}">${STYLE}${CHECKS_STYLE}${EDITOR_STYLE}</style>
</head>
<body>
<aside>
  <div class="bar">
    <h1>mailroom preview</h1>
    <button type="button" id="menu" aria-expanded="false" aria-controls="lists">Menu</button>
  </div>
  <nav id="lists">
    <h2>Templates</h2>
    <ul id="templates" role="list"></ul>
    <div id="load-problems"></div>
    ${EDITOR_NEW}
    <h2>Outbox</h2>
    <input id="outbox-search" type="search" placeholder="Search subject, recipient, template" aria-label="Search the outbox">
    <ul id="outbox" role="list"></ul>
    <p id="outbox-empty" class="empty" hidden>Nothing captured yet.</p>
    <p id="outbox-none" class="empty" hidden>No captured email matches.</p>
    <button type="button" id="release-all" data-action="release-all" hidden>Release all held</button>
    <h2>Configuration</h2>
    <ul role="list"><li><button type="button" data-settings="">Settings</button></li></ul>
  </nav>
</aside>
<main>
  <header>
    <h2 id="title">Loading…</h2>
    ${EDITOR_BUTTON}
    <select id="set" data-for="template" aria-label="Data set"></select>
    <select id="locale" data-for="template" aria-label="Language"></select>
    <span class="group" data-for="template email" role="group" aria-label="Width">
      <button type="button" data-width="mobile">Mobile 375</button><button type="button" data-width="desktop">Desktop</button>
    </span>
    <span class="group" data-for="template email" role="group" aria-label="Colour scheme">
      <button type="button" data-scheme="light">Light</button><button type="button" data-scheme="dark">Dark</button>
    </span>
    <span class="group" data-for="template email" role="group" aria-label="View">
      <button type="button" data-tab="html">HTML</button><button type="button" data-tab="text">Text</button><button type="button" data-tab="source">Source</button><button type="button" data-tab="headers">Headers</button>
    </span>
    <a id="download" class="download" data-for="email" download>Download .eml</a>
  </header>
  <section id="hold" class="panel" data-for="email" aria-label="Hold" hidden>
    <strong id="hold-status"></strong> <span id="hold-note" class="meta"></span>
    <button type="button" class="primary" data-action="release">Release</button>
    <input id="release-to" type="email" placeholder="qa@example.com" aria-label="Release to address">
    <button type="button" data-action="release-to">Release to…</button>
    <button type="button" data-action="discard">Discard</button>
    <ul id="hold-history"></ul>
  </section>
  <section id="email-panel" class="panel" data-for="email" aria-label="Captured email">
    <strong id="attachments-title"></strong>
    <button type="button" class="danger" data-action="delete">Delete</button>
    <ul id="attachments"></ul>
  </section>
  <section id="test-send" class="panel" data-for="template" aria-label="Send a test email">
    <input id="test-to" type="email" placeholder="you@example.com" aria-label="Send a test email to">
    <button type="button" data-action="send-test">Send a test email</button>
    <span id="sends-through" class="meta"></span>
  </section>
  <p id="action-result" role="status"></p>
  <div id="problem" data-for="template email settings" role="alert" hidden></div>
  ${EDITOR_PANEL}
  ${CHECKS_PANEL}
  <p id="subject" data-for="template email"></p>
  <section id="settings" data-for="settings" aria-label="Settings">
    <p class="meta">Read-only: configuration lives in code, the config file and the environment. Secrets show as set or unset, never their value.</p>
    <div class="panel"><button type="button" class="primary" data-action="verify">Verify connection</button><span class="meta">Runs the transport's verify(): connects and logs in, sends nothing.</span></div>
    <div id="settings-groups"></div>
  </section>
  <div id="stage" data-for="template email">
    <iframe id="frame" title="Email" sandbox="allow-same-origin allow-popups allow-popups-to-escape-sandbox" referrerpolicy="no-referrer"></iframe>
    <pre id="text" hidden></pre>
    <pre id="source" hidden></pre>
    <table id="headers" hidden></table>
  </div>
</main>
<script nonce="${nonce}">${SCRIPT}${CHECKS_SCRIPT}${EDITOR_SCRIPT}</script>
</body>
</html>`;
}
