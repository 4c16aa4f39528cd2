/**
 * Internal: the checks on the preview page — a badge on every template and captured email in the
 * sidebar (a template that does not compile or render is marked "fails"), and a panel listing
 * the findings of the email shown. Kept apart from page.ts, which calls it in three places: the
 * style, the panel's element, and the script. The badges sit beside the sidebar's buttons, not
 * in them, so that a button's text stays the name it shows. SpamAssassin runs when the panel's
 * button asks for it: a second or more of CPU per email is too much for every click. The page's script tells this one what happens by
 * two events on `document`: `mailroom:lists` after the sidebar is drawn, `mailroom:show` (detail
 * `{ kind, name, set, problem, missing }`) after an email or the settings (`name` null) is shown
 * (`missing`: an email no longer in the outbox). Text goes in with `textContent` only.
 */

export const CHECKS_STYLE = `
aside li:has(> .badge.checks) { position:relative; }
aside li:has(> .badge.checks) > button { padding-right:88px; }
aside li > .badge.checks { position:absolute; right:10px; top:8px; white-space:nowrap; margin:0; pointer-events:none; }
.badge.checks.ok { color:#146C43; border-color:#A3CFBB; }
.badge.checks.warning { color:#7A5B00; border-color:#E9C46A; background:#FFF8E1; }
.badge.checks.error, .badge.checks.fails { color:#842029; border-color:#F1AEB5; background:#FDF0F1; }
#checks { display:block; }
#checks h3 { font-size:13px; margin:0 0 6px; }
#checks li { padding:3px 0; border-top:1px solid var(--line, #DEE2E6); font-size:13px; }
#checks li:first-child { border-top:0; }
#checks .severity { display:inline-block; min-width:64px; margin-right:6px; font-size:11px; text-transform:uppercase; letter-spacing:.04em; font-weight:600; }
#checks .severity.error { color:#842029; }
#checks .severity.warning { color:#7A5B00; }
#checks .severity.info { color:var(--muted, #5C656C); }
#checks .where { color:var(--muted, #5C656C); font-size:12px; margin-left:4px; word-break:break-all; }
#checks-spam-run { margin-top:6px; }
#checks details summary { cursor:pointer; color:var(--muted, #5C656C); font-size:12px; margin-top:4px; }
`;

/** The panel, placed by page.ts above the email. */
export const CHECKS_PANEL = `<section id="checks" class="panel" aria-label="Checks" hidden>
    <h3 id="checks-title">Checks</h3>
    <ul id="checks-list"></ul>
    <ul id="checks-spam"></ul>
    <button type="button" id="checks-spam-run" hidden>Score with SpamAssassin</button>
    <details id="checks-more" hidden><summary></summary><ul id="checks-info"></ul></details>
  </section>`;

export const CHECKS_SCRIPT = `
(() => {
  const q = (s) => document.querySelector(s);
  const make = (tag, { dataset = {}, ...props } = {}, ...children) => {
    const e = Object.assign(document.createElement(tag), props);
    Object.assign(e.dataset, dataset);
    e.append(...children);
    return e;
  };
  const plural = (n, word) => n + ' ' + word + (n === 1 ? '' : 's');
  function badge(summary) {
    if (summary.failed) return make('span', { className: 'badge checks fails', textContent: 'fails', title: summary.failed.message });
    const kind = summary.errors ? 'error' : summary.warnings ? 'warning' : 'ok';
    const text = summary.errors ? plural(summary.errors, 'error') : summary.warnings ? plural(summary.warnings, 'warning') : 'checks ok';
    return make('span', { className: 'badge checks ' + kind, textContent: text, title: plural(summary.errors, 'error') + ', ' + plural(summary.warnings, 'warning') + ', ' + plural(summary.infos, 'note') });
  }
  async function badges() {
    const r = await fetch('api/checks', { cache: 'no-store' });
    if (!r.ok) return;
    const { templates, emails, spam: spamOn } = await r.json();
    spamOffered = spamOn === true;
    offerSpam();
    for (const b of document.querySelectorAll('aside button[data-template], aside button[data-email]')) {
      const summary = b.dataset.template ? templates[b.dataset.template] : emails[b.dataset.email];
      const item = b.closest('li');
      for (const old of item.querySelectorAll(':scope > .badge.checks')) old.remove();
      if (summary) item.append(badge(summary));
    }
    // A template that could not even be defined has no button: its problem line says so.
  }
  let shown = 0;
  let current = null;
  // Off until api/checks says spam is on, so that checks: { spam: false } never flashes the button;
  // that answer may come before or after the panel's.
  let spamOffered = false;
  /** Whether the panel shows a report to score: not while it runs, nor when the email does not render. */
  let reported = false;
  const offerSpam = () => { q('#checks-spam-run').hidden = !(spamOffered && reported); };
  const rowOf = (f) => make('li', { dataset: { check: f.check, severity: f.severity } }, make('span', { className: 'severity ' + f.severity, textContent: f.severity }), f.check + ': ' + f.message, ...(f.where ? [make('span', { className: 'where', textContent: f.where })] : []));
  async function getAnswer(url) {
    try {
      const r = await fetch(url, { cache: 'no-store' });
      return r.ok ? await r.json() : { failed: { message: url + ': ' + r.status } };
    } catch (error) { return { failed: { message: error.message } }; }
  }
  async function spam() {
    const ticket = shown;
    const button = q('#checks-spam-run');
    button.disabled = true;
    q('#checks-spam').replaceChildren(make('li', { textContent: 'SpamAssassin: running…' }));
    const answer = await getAnswer(current + '/spam');
    if (ticket !== shown) return;
    button.disabled = false;
    q('#checks-spam').replaceChildren(...(answer.failed ? [make('li', { textContent: 'SpamAssassin: ' + answer.failed.message })] : answer.findings.map(rowOf)));
  }
  async function panel(view) {
    const ticket = ++shown;
    const box = q('#checks');
    reported = false;
    // Nothing to check: no template yet, or an email no longer in the outbox.
    if (!view.name || view.missing) { box.hidden = true; return; }
    box.hidden = false;
    q('#checks-title').textContent = 'Checks: running…';
    q('#checks-list').replaceChildren();
    q('#checks-spam').replaceChildren();
    offerSpam();
    q('#checks-spam-run').disabled = false;
    q('#checks-more').hidden = true;
    current = view.kind === 'template'
      ? 'api/checks/template/' + encodeURIComponent(view.name) + '/' + encodeURIComponent(view.set)
      : 'api/checks/email/' + encodeURIComponent(view.name);
    const answer = await getAnswer(current);
    if (ticket !== shown) return;
    if (answer.failed) {
      q('#checks-title').textContent = 'Checks: not run, the email does not render';
      return;
    }
    reported = true;
    offerSpam();
    q('#checks-title').textContent = 'Checks: ' + plural(answer.errors, 'error') + ', ' + plural(answer.warnings, 'warning');
    q('#checks-list').append(...answer.findings.filter((f) => f.severity !== 'info').map(rowOf));
    if (!answer.errors && !answer.warnings) q('#checks-list').append(make('li', { textContent: 'Nothing to fix.' }));
    q('#checks-info').replaceChildren(...answer.findings.filter((f) => f.severity === 'info').map(rowOf));
    q('#checks-more').hidden = answer.infos === 0;
    q('#checks-more summary').textContent = plural(answer.infos, 'note');
  }
  document.addEventListener('mailroom:lists', () => { badges().catch(() => {}); });
  document.addEventListener('mailroom:show', (event) => { panel(event.detail); });
  q('#checks-spam-run').addEventListener('click', (event) => { event.stopPropagation(); spam(); });
})();
`;
