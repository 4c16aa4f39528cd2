/**
 * Internal: the template editor on the preview page (development, loopback only: the server says
 * so in `api/templates`' `editing`, and each template's `editable` / `notEditable`). Kept apart
 * from page.ts, which places the Edit button, the "New template" field, the panel, the style and
 * the script. The script learns what is shown from the page's `mailroom:lists` and `mailroom:show`
 * events, and uses its `post`, `getJson`, `loadLists` and `show`. The unsaved render comes back as
 * a `frame/draft/ID` the server keeps for a while: email HTML only ever goes in a sandboxed frame.
 */

const FILES = [
  ['subject.eta', 'Subject', 2],
  ['preheader.eta', 'Preheader (optional)', 2],
  ['html.eta', 'HTML', 14],
  ['text.eta', 'Text (optional: derived from the HTML when empty)', 6],
  ['style.css', 'CSS (optional)', 6],
  ['template.json', 'template.json (fields, layout)', 4],
] as const;

export const EDITOR_STYLE = `
#edit-why { flex-basis:100%; }
#new-template { display:flex; gap:6px; margin:6px 16px; }
#new-template input { flex:1; min-width:0; font:inherit; padding:5px 8px; border:1px solid var(--line); border-radius:6px; }
header #edit { border:1px solid var(--line); border-radius:6px; background:#fff; padding:6px 12px; font:inherit; color:inherit; cursor:pointer; }
#new-template button, #editor button { font:inherit; padding:5px 10px; border:1px solid var(--line); border-radius:6px; background:#fff; cursor:pointer; }
#editor button.primary { background:var(--primary); border-color:var(--primary); color:#fff; }
#new-result { margin:0 16px; font-size:12px; }
#new-result.error, #editor-status.error { color:var(--danger); }
#editor { display:block; }
#editor[hidden] { display:none; }
body.editing #stage { display:none; }
.editor-bar { display:flex; flex-wrap:wrap; align-items:center; gap:8px; margin-bottom:8px; }
.editor-grid { display:grid; grid-template-columns:minmax(0,1fr) minmax(0,1fr); gap:14px; }
.editor-fields label { display:block; margin-bottom:8px; font-size:12px; color:var(--muted); }
.editor-fields textarea { display:block; width:100%; font:12px/1.4 ui-monospace,SFMono-Regular,Menlo,monospace; border:1px solid var(--line); border-radius:4px; padding:6px; resize:vertical; color:var(--text); }
#editor-problem { border:1px solid #F1AEB5; background:#FDF0F1; color:#842029; border-radius:6px; padding:8px 10px; margin-bottom:8px; }
#editor-problem code { display:block; margin-top:4px; }
#editor-frame.stale { opacity:.45; }
#editor-frame { display:block; width:100%; height:600px; border:1px solid var(--line); border-radius:4px; background:#fff; }
@media (max-width:760px) { .editor-grid { grid-template-columns:minmax(0,1fr); } }
`;

/** In the header, after the title. */
export const EDITOR_BUTTON = `<button type="button" id="edit" hidden>Edit</button><span id="edit-why" class="meta" hidden></span>`;

/** In the sidebar, under the templates. */
export const EDITOR_NEW = `<div id="new-template" hidden><input id="new-name" placeholder="new-template-name" aria-label="New template name" autocomplete="off" spellcheck="false"><button type="button" id="new-create">New template</button></div>
    <p id="new-result" role="status"></p>`;

/** Above the checks and the email, which it replaces while open. */
export const EDITOR_PANEL = `<section id="editor" class="panel" aria-label="Edit template" hidden>
    <div class="editor-bar"><strong id="editor-title"></strong><button type="button" id="editor-save" class="primary">Save</button><button type="button" id="editor-close">Close</button><span id="editor-status" role="status"></span></div>
    <div id="editor-problem" role="alert" hidden></div>
    <div class="editor-grid">
      <div class="editor-fields">
        ${FILES.map(([file, label, rows]) => `<label>${label}<textarea data-file="${file}" rows="${rows}" spellcheck="false"></textarea></label>`).join('\n        ')}
        <div id="editor-sets"></div>
      </div>
      <div><p id="editor-subject"></p><iframe id="editor-frame" title="Email, unsaved" sandbox="allow-same-origin" referrerpolicy="no-referrer"></iframe></div>
    </div>
  </section>`;

export const EDITOR_SCRIPT = `
let editingName = null;
let renderTimer;
let renderSeq = 0;
document.addEventListener('mailroom:lists', () => { $('#new-template').hidden = !editing.canCreate; });
document.addEventListener('mailroom:show', ({ detail }) => {
  const t = detail.kind === 'template' ? templates.find((x) => x.name === detail.name) : undefined;
  $('#edit').hidden = !(t && t.editable);
  // Why a template cannot be edited, when editing is on at all: off, there is no button to explain.
  const why = $('#edit-why');
  why.hidden = !(t && !t.editable && editing.allowed);
  why.textContent = why.hidden ? '' : 'Not editable: ' + t.notEditable;
  if (editingName && (detail.kind !== 'template' || detail.name !== editingName)) closeEditor();
  // Another data set or colour scheme picked while editing: the unsaved render follows it.
  else if (editingName) void renderDraft();
});
function editorProblem(problem) {
  const box = $('#editor-problem');
  box.hidden = !problem;
  if (!problem) return;
  const where = [problem.file, problem.line && 'line ' + problem.line].filter(Boolean).join(', ');
  box.replaceChildren(el('strong', { textContent: problem.field ? 'Field ' + problem.field : 'Does not compile' }), el('div', { textContent: problem.message }), ...(where ? [el('code', { textContent: where })] : []));
}
function editorStatus(text, error = false) {
  const line = $('#editor-status');
  line.textContent = text;
  line.className = error ? 'error' : '';
}
async function openEditor() {
  const view = await getJson('api/edit/' + encodeURIComponent(state.name));
  if (!view.editable) return editorStatus(view.why || 'not editable', true);
  editingName = view.name;
  for (const area of document.querySelectorAll('#editor [data-file]')) area.value = view.files[area.dataset.file] ?? '';
  $('#editor-sets').replaceChildren(...Object.entries(view.sets).map(([name, text]) => el('label', { textContent: 'Data set preview/' + name + '.json' }, el('textarea', { value: text, rows: 6, spellcheck: false, dataset: { set: name } }))));
  $('#editor-title').textContent = 'Editing ' + view.name;
  $('#editor').hidden = false;
  document.body.classList.add('editing');
  editorStatus('');
  await renderDraft();
}
function closeEditor() {
  editingName = null;
  clearTimeout(renderTimer);
  $('#editor').hidden = true;
  document.body.classList.remove('editing');
}
function draftBody() {
  const files = {};
  for (const area of document.querySelectorAll('#editor [data-file]')) files[area.dataset.file] = area.value;
  const sets = {};
  for (const area of document.querySelectorAll('#editor [data-set]')) sets[area.dataset.set] = area.value;
  return { template: editingName, set: state.set, files, sets };
}
async function editPost(url, body) {
  const r = await fetch(url, { method: 'POST', cache: 'no-store', headers: { 'content-type': 'application/json', 'x-mailroom-token': token }, body: JSON.stringify(body) });
  return { status: r.status, answer: await r.json().catch(() => ({ error: { message: url + ': ' + r.status } })) };
}
/** Renders what the editors hold, unsaved; an answer that arrives after a newer request's is dropped. */
async function renderDraft() {
  if (!editingName) return;
  const seq = ++renderSeq;
  const { status, answer } = await editPost('api/edit/render', draftBody());
  if (seq !== renderSeq || !editingName) return;
  if (status !== 200) return editorProblem({ message: answer.error ? answer.error.message : 'render failed: ' + status });
  editorProblem(answer.problem);
  // The last render that worked stays, dimmed, until the sources render again.
  $('#editor-frame').classList.toggle('stale', Boolean(answer.problem));
  if (answer.problem) return;
  $('#editor-subject').textContent = 'Subject: ' + answer.subject;
  $('#editor-frame').src = answer.frame + '?scheme=' + state.scheme;
}
async function saveDraft() {
  clearTimeout(renderTimer);
  const button = $('#editor-save');
  button.disabled = true;
  editorStatus('Saving…');
  try {
    const { status, answer } = await editPost('api/edit/save', draftBody());
    if (status === 422) {
      editorProblem(answer.problem);
      return editorStatus('Not saved: it does not compile', true);
    }
    if (status !== 200) return editorStatus('Not saved: ' + (answer.error ? answer.error.message : status), true);
    editorProblem(undefined);
    editorStatus(answer.saved.length ? 'Saved ' + answer.saved.join(', ') : 'Nothing to save: the files are unchanged');
    await refresh(true);
  } finally {
    button.disabled = false;
  }
}
async function createTemplate() {
  const line = $('#new-result');
  const { status, answer } = await editPost('api/edit/new', { name: $('#new-name').value.trim() });
  if (status !== 200) {
    line.textContent = answer.error ? answer.error.message : 'not created: ' + status;
    line.className = 'error';
    return;
  }
  line.textContent = 'Created ' + answer.created;
  line.className = '';
  $('#new-name').value = '';
  await loadLists();
  Object.assign(state, { kind: 'template', name: answer.created, set: null });
  await show();
}
$('#edit').addEventListener('click', () => void openEditor());
$('#editor-close').addEventListener('click', closeEditor);
// As tall as the email, like the main frame: the editors and the render scroll together.
$('#editor-frame').addEventListener('load', () => {
  const frame = $('#editor-frame');
  const doc = frame.contentDocument;
  if (!doc || !doc.documentElement || doc.URL === 'about:blank') return;
  frame.style.height = '0px';
  frame.style.height = doc.documentElement.scrollHeight + (frame.offsetHeight - frame.clientHeight) + 'px';
});
$('#editor-save').addEventListener('click', () => void saveDraft());
$('#new-create').addEventListener('click', () => void createTemplate());
$('#editor').addEventListener('input', () => {
  editorStatus('Unsaved changes');
  clearTimeout(renderTimer);
  renderTimer = setTimeout(renderDraft, 300);
});
`;
