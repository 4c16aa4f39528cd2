/**
 * The preview page's stylesheet. Two layouts: a sidebar beside the email from 761 px up; below
 * that, a top bar whose "Menu" button opens the lists over the page's full width, and controls
 * that wrap instead of running off the screen. No fixed heights: the email frame is sized to its
 * document by the page's script.
 */
export const STYLE = `
:root { --primary:#0B5ED7; --text:#343A40; --muted:#5C656C; --line:#DEE2E6; --bg:#F8F9FA; --danger:#DC3545; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif; color:var(--text); background:var(--bg); display:grid; grid-template-columns:260px minmax(0,1fr); height:100vh; }
aside { background:#fff; border-right:1px solid var(--line); overflow:auto; padding:16px 0; }
aside .bar { display:flex; align-items:center; justify-content:space-between; gap:8px; margin:0 16px 12px; }
aside h1 { font-size:15px; margin:0; }
#menu { display:none; border:1px solid var(--line); background:#fff; border-radius:6px; padding:6px 12px; font:inherit; color:inherit; cursor:pointer; }
aside h2 { font-size:11px; text-transform:uppercase; letter-spacing:.06em; color:var(--muted); margin:18px 16px 6px; }
aside li > button { display:block; width:100%; text-align:left; border:0; background:none; padding:7px 16px; font:inherit; color:inherit; cursor:pointer; }
aside li > button:hover { background:var(--bg); }
aside button[aria-current="true"] { background:#E7F1FF; color:var(--primary); font-weight:600; }
aside .meta { display:block; font-size:12px; color:var(--muted); font-weight:400; overflow:hidden; text-overflow:ellipsis; white-space:nowrap; }
aside .label { overflow-wrap:anywhere; }
aside [data-template] .label { white-space:nowrap; display:inline-block; max-width:100%; overflow:hidden; text-overflow:ellipsis; vertical-align:bottom; }
#outbox-search { display:block; width:calc(100% - 32px); margin:0 16px 6px; font:inherit; padding:5px 8px; border:1px solid var(--line); border-radius:6px; }
aside #release-all { border:0; background:none; font:inherit; cursor:pointer; padding:7px 16px; color:var(--primary); }
.badge { font-size:10px; color:var(--muted); border:1px solid var(--line); border-radius:8px; padding:0 6px; margin-left:6px; font-weight:400; white-space:nowrap; }
.badge.held { color:#7A5B00; border-color:#E9C46A; background:#FFF8E1; }
.badge.released { color:#146C43; border-color:#A3CFBB; }
.badge.discarded { text-decoration:line-through; }
.empty { color:var(--muted); padding:4px 16px; margin:0; }
main { overflow:auto; padding:20px 28px; min-width:0; }
header { display:flex; flex-wrap:wrap; align-items:center; gap:10px 12px; margin-bottom:14px; }
header h2 { font-size:18px; margin:0; flex:1 1 100%; overflow-wrap:anywhere; }
.group { display:inline-flex; flex-wrap:wrap; border:1px solid var(--line); border-radius:6px; overflow:hidden; background:#fff; }
.group button { border:0; background:none; padding:6px 12px; font:inherit; cursor:pointer; color:inherit; }
.group button + button { border-left:1px solid var(--line); }
.group button[aria-pressed="true"] { background:var(--primary); color:#fff; }
select { font:inherit; padding:5px 8px; border:1px solid var(--line); border-radius:6px; background:#fff; max-width:100%; }
a.download { color:var(--primary); }
#stage { background:#fff; border:1px solid var(--line); border-radius:8px; padding:16px; }
#frame { display:block; border:1px solid var(--line); border-radius:4px; background:#fff; width:100%; height:600px; margin:0 auto; }
#frame.mobile { width:375px; max-width:100%; }
#frame.dark { color-scheme:dark; }
pre { white-space:pre-wrap; overflow-wrap:anywhere; margin:0; font:13px/1.5 ui-monospace,SFMono-Regular,Menlo,monospace; }
table { border-collapse:collapse; width:100%; }
th, td { text-align:left; vertical-align:top; padding:6px 10px; border-bottom:1px solid var(--line); overflow-wrap:anywhere; }
th { width:160px; color:var(--muted); font-weight:600; }
#problem { border:1px solid var(--danger); background:#FDF0F1; color:#842029; border-radius:8px; padding:12px 16px; margin-bottom:14px; overflow-wrap:anywhere; }
#problem strong { display:block; margin-bottom:4px; }
#problem code { font:13px ui-monospace,Menlo,monospace; }
ul { list-style:none; margin:0; padding:0; }
#subject { color:var(--muted); margin:0 0 10px; overflow-wrap:anywhere; }
[hidden] { display:none !important; }
/* The view an element belongs to (its data-for) against the view shown (the body's data-view, set by
   the script's show() once the view has loaded): before that, and in any other view, it is not shown. */
[data-for]:not(body[data-view="template"] [data-for~="template"], body[data-view="email"] [data-for~="email"], body[data-view="settings"] [data-for~="settings"]) { display:none !important; }
.panel { background:#fff; border:1px solid var(--line); border-radius:8px; padding:10px 14px; margin-bottom:14px; display:flex; flex-wrap:wrap; gap:8px; align-items:center; }
.panel button { border:1px solid var(--line); background:#fff; padding:6px 12px; border-radius:6px; font:inherit; cursor:pointer; color:inherit; }
.panel button.primary { background:var(--primary); border-color:var(--primary); color:#fff; }
.panel button.danger { color:var(--danger); border-color:#F1AEB5; margin-left:auto; }
.panel button:disabled { opacity:.5; cursor:default; }
.panel input { font:inherit; padding:5px 8px; border:1px solid var(--line); border-radius:6px; flex:1 1 200px; min-width:0; max-width:320px; }
.panel .meta { color:var(--muted); font-size:12px; }
#hold-history { flex:1 1 100%; font-size:12px; color:var(--muted); }
#attachments { flex:1 1 100%; }
#attachments li { display:flex; flex-wrap:wrap; align-items:baseline; gap:4px 10px; padding:4px 0; border-top:1px solid var(--line); overflow-wrap:anywhere; }
#attachments a { color:var(--primary); font-weight:600; }
#action-result { margin:0 0 10px; overflow-wrap:anywhere; }
#action-result.error { color:var(--danger); }
#settings h3 { font-size:13px; margin:18px 0 6px; }
#settings td.source { color:var(--muted); font-size:12px; width:220px; }
#settings .secret { font-weight:600; }

@media (max-width: 760px) {
  body { display:block; height:auto; }
  aside { position:sticky; top:0; z-index:2; border-right:0; border-bottom:1px solid var(--line); padding:10px 0; max-height:100vh; }
  aside .bar { margin:0 12px; }
  #menu { display:inline-block; }
  #lists { display:none; padding-bottom:8px; }
  body.menu-open #lists { display:block; }
  main { overflow:visible; padding:12px; }
  #stage { padding:0; border:0; background:none; }
  th { width:96px; padding:6px; }
  td { padding:6px; }
  #settings td.source { width:auto; }
  #settings tr { display:grid; grid-template-columns:96px minmax(0,1fr); }
  #settings th { grid-row:1 / span 2; }
  #settings td.value { grid-column:2; padding-bottom:0; }
  #settings td.source { grid-column:2; padding-top:0; }
  #settings tr { border-bottom:1px solid var(--line); }
  #settings th, #settings td { border-bottom:0; }
}
`;
