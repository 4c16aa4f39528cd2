/**
 * The preview page: one HTML document with its stylesheet and script inline (allowed by a
 * per-response nonce, nothing else). Every value from a template or an email is put in with
 * `textContent`; email HTML only ever goes into a sandboxed iframe, loaded from the server.
 */

import { CHECKS_PANEL, CHECKS_SCRIPT, CHECKS_STYLE } from './checks-view.js';

const STYLE = `
:root { --primary:#007BFF; --text:#343A40; --muted:#6C757D; --line:#DEE2E6; --bg:#F8F9FA; --danger:#DC3545; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif; color:var(--text); background:var(--bg); display:grid; grid-template-columns:260px 1fr; height:100vh; }
aside { background:#fff; border-right:1px solid var(--line); overflow:auto; padding:16px 0; }
aside h1 { font-size:15px; margin:0 16px 12px; }
aside h2 { font-size:11px; text-transform:uppercase; letter-spacing:.06em; color:var(--muted); margin:18px 16px 6px; }
aside button { display:block; width:100%; text-align:left; border:0; background:none; padding:7px 16px; font:inherit; color:inherit; cursor:pointer; }
aside button:hover { background:var(--bg); }
aside button[aria-current="true"] { background:#E7F1FF; color:var(--primary); font-weight:600; }
aside .meta { display:block; font-size:12px; color:var(--muted); font-weight:400; overflow:hidden; text-overflow:ellipsis; white-space:nowrap; }
.badge { font-size:10px; color:var(--muted); border:1px solid var(--line); border-radius:8px; padding:0 6px; margin-left:6px; font-weight:400; }
.empty { color:var(--muted); padding:4px 16px; margin:0; }
main { overflow:auto; padding:20px 28px; }
header { display:flex; flex-wrap:wrap; align-items:center; gap:12px; margin-bottom:14px; }
header h2 { font-size:18px; margin:0; flex:1 1 100%; }
.group { display:inline-flex; border:1px solid var(--line); border-radius:6px; overflow:hidden; background:#fff; }
.group button { border:0; background:none; padding:6px 12px; font:inherit; cursor:pointer; color:inherit; }
.group button + button { border-left:1px solid var(--line); }
.group button[aria-pressed="true"] { background:var(--primary); color:#fff; }
select { font:inherit; padding:5px 8px; border:1px solid var(--line); border-radius:6px; background:#fff; }
a.download { color:var(--primary); }
#stage { background:#fff; border:1px solid var(--line); border-radius:8px; padding:16px; }
#frame { display:block; border:1px solid var(--line); border-radius:4px; background:#fff; width:100%; height:70vh; margin:0 auto; }
#frame.mobile { width:375px; }
#frame.desktop { width:100%; min-width:600px; }
pre { white-space:pre-wrap; word-break:break-word; margin:0; font:13px/1.5 ui-monospace,SFMono-Regular,Menlo,monospace; }
table { border-collapse:collapse; width:100%; }
th, td { text-align:left; vertical-align:top; padding:6px 10px; border-bottom:1px solid var(--line); }
th { width:160px; color:var(--muted); font-weight:600; }
#problem { border:1px solid var(--danger); background:#FDF0F1; color:#842029; border-radius:8px; padding:12px 16px; margin-bottom:14px; }
#problem strong { display:block; margin-bottom:4px; }
#problem code { font:13px ui-monospace,Menlo,monospace; }
ul { list-style:none; margin:0; padding:0; }
#subject { color:var(--muted); margin:0 0 10px; }
[hidden] { display:none !important; }
.badge.held { color:#7A5B00; border-color:#E9C46A; background:#FFF8E1; }
.badge.released { color:#146C43; border-color:#A3CFBB; }
.badge.discarded { text-decoration:line-through; }
.panel { background:#fff; border:1px solid var(--line); border-radius:8px; padding:10px 14px; margin-bottom:14px; display:flex; flex-wrap:wrap; gap:8px; align-items:center; }
.panel button { border:1px solid var(--line); background:#fff; padding:6px 12px; border-radius:6px; font:inherit; cursor:pointer; color:inherit; }
.panel button.primary { background:var(--primary); border-color:var(--primary); color:#fff; }
.panel button:disabled { opacity:.5; cursor:default; }
.panel input { font:inherit; padding:5px 8px; border:1px solid var(--line); border-radius:6px; min-width:220px; }
.panel .meta { color:var(--muted); font-size:12px; }
#hold-history { flex:1 1 100%; font-size:12px; color:var(--muted); }
#action-result { margin:0 0 10px; }
#action-result.error { color:var(--danger); }
aside #release-all { color:var(--primary); }
`;

const SCRIPT = `
const $ = (s) => document.querySelector(s);
const el = (tag, { dataset = {}, ...props } = {}, ...children) => {
  const e = Object.assign(document.createElement(tag), props);
  Object.assign(e.dataset, dataset);
  e.append(...children);
  return e;
};
const state = { kind: 'template', name: null, set: null, width: 'desktop', tab: 'html' };
let templates = [];
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
    if (action === 'send-test') {
      const { result } = await post('api/send', { template: state.name, set: state.set, to: $('#test-to').value });
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
  await loadLists();
  await show(true);
}

function readHash() {
  const [kind, name, set] = decodeURIComponent(location.hash.slice(1)).split('/');
  if (kind === 'template' || kind === 'email') Object.assign(state, { kind, name: name || null, set: set || null });
}
function writeHash() {
  const parts = state.kind === 'template' ? ['template', state.name, state.set] : ['email', state.name];
  history.replaceState(null, '', '#' + parts.map(encodeURIComponent).join('/'));
}
async function getJson(url) { const r = await fetch(url, { cache: 'no-store' }); if (!r.ok) throw new Error(url + ': ' + r.status); return r.json(); }

async function loadLists() {
  const [list, outbox, held] = await Promise.all([getJson('api/templates'), getJson('api/outbox'), getJson('api/hold')]);
  templates = list.templates;
  hold = held;
  const status = new Map(hold.emails.map((e) => [e.id, e.status]));
  $('#release-all').hidden = !hold.emails.some((e) => e.status === 'held');
  $('#templates').replaceChildren(...templates.map((t) => el('li', {}, el('button', { type: 'button', dataset: { template: t.name } }, t.name, ...(t.builtin ? [el('span', { className: 'badge', textContent: 'built-in' })] : [])))));
  $('#load-problems').replaceChildren(...list.problems.map((p) => el('p', { className: 'empty', textContent: (p.template ? p.template + ': ' : '') + p.message })));
  $('#outbox').replaceChildren(...outbox.map((m) => el('li', {}, el('button', { type: 'button', dataset: { email: m.id } }, m.subject || '(no subject)', ...(status.has(m.id) ? [el('span', { className: 'badge ' + status.get(m.id), textContent: status.get(m.id) })] : []), el('span', { className: 'meta', textContent: m.to.join(', ') + ' · ' + new Date(m.date).toLocaleString() })))));
  $('#outbox-empty').hidden = outbox.length > 0;
  if (!state.name && templates[0]) Object.assign(state, { kind: 'template', name: templates[0].name, set: null });
  document.dispatchEvent(new CustomEvent('mailroom:lists'));
}

function showProblem(problem) {
  const box = $('#problem');
  box.hidden = !problem;
  if (!problem) return;
  const where = [problem.file, problem.line && 'line ' + problem.line].filter(Boolean).join(', ');
  box.replaceChildren(el('strong', { textContent: (problem.template ? 'Template "' + problem.template + '"' : 'Problem') + (problem.field ? ', field ' + problem.field : '') }), el('div', { textContent: problem.message }), ...(where ? [el('code', { textContent: where })] : []));
}

async function show(reload = false) {
  let view;
  const setPicker = $('#set');
  if (state.kind === 'template') {
    const t = templates.find((x) => x.name === state.name);
    if (!t) { showProblem({ message: 'No such template: ' + state.name }); return; }
    if (!state.set || !t.sets.includes(state.set)) state.set = t.sets[0];
    setPicker.replaceChildren(...t.sets.map((s) => el('option', { value: s, textContent: s, selected: s === state.set })));
    setPicker.hidden = false;
    $('#download').hidden = true;
    view = await getJson('api/templates/' + encodeURIComponent(t.name) + '/' + encodeURIComponent(state.set));
    $('#title').textContent = t.name;
    $('#hold').hidden = true;
    $('#test-send').hidden = false;
    $('#sends-through').textContent = 'through ' + hold.sendsThrough;
  } else {
    setPicker.hidden = true;
    view = await getJson('api/outbox/' + encodeURIComponent(state.name));
    $('#title').textContent = view.subject || '(no subject)';
    const link = $('#download');
    link.href = 'eml/' + encodeURIComponent(state.name) + '.eml';
    link.hidden = false;
    $('#test-send').hidden = true;
    const held = view.hold;
    $('#hold').hidden = !held;
    if (held) {
      $('#hold-status').textContent = held.status === 'held' ? 'Held: not delivered yet' : held.status === 'released' ? 'Released' : 'Discarded';
      $('#hold-note').textContent = held.interrupted ? 'An earlier release was interrupted and may have been delivered: check before releasing it again.' : held.busy ? 'A release is under way.' : '';
      for (const b of document.querySelectorAll('#hold button, #release-to')) b.disabled = held.status !== 'held';
      $('#hold-history').replaceChildren(...held.history.map((h) => el('li', { textContent: historyText(h) })));
    }
  }
  writeHash();
  for (const b of document.querySelectorAll('aside button')) b.setAttribute('aria-current', String(b.dataset.template === state.name && state.kind === 'template' || b.dataset.email === state.name && state.kind === 'email'));
  showProblem(view.problem);
  $('#subject').textContent = view.subject ? 'Subject: ' + view.subject : '';
  const frame = $('#frame');
  if (view.frame && (reload || frame.dataset.src !== view.frame)) { frame.dataset.src = view.frame; frame.src = view.frame + '?t=' + Date.now(); }
  frame.className = state.width;
  $('#text').textContent = view.text ?? '(no text part)';
  $('#source').textContent = view.html ?? '(no HTML part)';
  $('#headers').replaceChildren(...(view.headers ?? []).map(([k, v]) => el('tr', {}, el('th', { textContent: k }), el('td', { textContent: v }))));
  $('#stage').hidden = Boolean(view.problem);
  for (const [name, node] of [['html', frame], ['text', $('#text')], ['source', $('#source')], ['headers', $('#headers')]]) node.hidden = state.tab !== name;
  for (const b of document.querySelectorAll('[data-tab]')) b.setAttribute('aria-pressed', String(b.dataset.tab === state.tab));
  for (const b of document.querySelectorAll('[data-width]')) b.setAttribute('aria-pressed', String(b.dataset.width === state.width));
  document.dispatchEvent(new CustomEvent('mailroom:show', { detail: { kind: state.kind, name: state.name, set: state.set, problem: Boolean(view.problem) } }));
}

document.addEventListener('click', (event) => {
  const b = event.target.closest('button');
  if (!b) return;
  if (b.dataset.action) return void act(b.dataset.action);
  if (b.dataset.template) Object.assign(state, { kind: 'template', name: b.dataset.template, set: null });
  else if (b.dataset.email) Object.assign(state, { kind: 'email', name: b.dataset.email });
  else if (b.dataset.tab) state.tab = b.dataset.tab;
  else if (b.dataset.width) state.width = b.dataset.width;
  else return;
  show();
});
$('#set').addEventListener('change', (event) => { state.set = event.target.value; show(); });

readHash();
loadLists().then(show);
const events = new EventSource('events');
events.addEventListener('change', () => loadLists().then(() => show(true)));
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
<style nonce="${nonce}">${STYLE}${CHECKS_STYLE}</style>
</head>
<body>
<aside>
  <h1>mailroom preview</h1>
  <h2>Templates</h2>
  <ul id="templates" role="list"></ul>
  <div id="load-problems"></div>
  <h2>Outbox</h2>
  <ul id="outbox" role="list"></ul>
  <p id="outbox-empty" class="empty">Nothing captured yet.</p>
  <button type="button" id="release-all" data-action="release-all" hidden>Release all held</button>
</aside>
<main>
  <header>
    <h2 id="title">Loading…</h2>
    <select id="set" aria-label="Data set"></select>
    <span class="group" role="group" aria-label="Width">
      <button type="button" data-width="mobile">Mobile 375</button><button type="button" data-width="desktop">Desktop</button>
    </span>
    <span class="group" role="group" aria-label="View">
      <button type="button" data-tab="html">HTML</button><button type="button" data-tab="text">Text</button><button type="button" data-tab="source">Source</button><button type="button" data-tab="headers">Headers</button>
    </span>
    <a id="download" class="download" hidden download>Download .eml</a>
  </header>
  <section id="hold" class="panel" aria-label="Hold" hidden>
    <strong id="hold-status"></strong> <span id="hold-note" class="meta"></span>
    <button type="button" class="primary" data-action="release">Release</button>
    <input id="release-to" type="email" placeholder="qa@example.com" aria-label="Release to address">
    <button type="button" data-action="release-to">Release to…</button>
    <button type="button" data-action="discard">Discard</button>
    <ul id="hold-history"></ul>
  </section>
  <section id="test-send" class="panel" aria-label="Send a test email" hidden>
    <input id="test-to" type="email" placeholder="you@example.com" aria-label="Send a test email to">
    <button type="button" data-action="send-test">Send a test email</button>
    <span id="sends-through" class="meta"></span>
  </section>
  <p id="action-result" role="status"></p>
  <div id="problem" role="alert" hidden></div>
  ${CHECKS_PANEL}
  <p id="subject"></p>
  <div id="stage">
    <iframe id="frame" title="Email" sandbox="allow-popups allow-popups-to-escape-sandbox" referrerpolicy="no-referrer"></iframe>
    <pre id="text" hidden></pre>
    <pre id="source" hidden></pre>
    <table id="headers" hidden></table>
  </div>
</main>
<script nonce="${nonce}">${SCRIPT}${CHECKS_SCRIPT}</script>
</body>
</html>`;
}
