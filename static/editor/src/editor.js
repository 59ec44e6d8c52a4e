// The code editor of snippet pages and the playground: CodeMirror 6, bundled by esbuild
// into static/editor/editor.js (`make static/editor/editor.js`). run.js loads it once a
// page has a run panel, and replaces each plain highlighted listing with an editor.
import { defaultKeymap, history, historyKeymap, indentWithTab } from "@codemirror/commands";
import { python } from "@codemirror/lang-python";
import { PostgreSQL, sql } from "@codemirror/lang-sql";
import { bracketMatching, indentOnInput, indentUnit, syntaxHighlighting } from "@codemirror/language";
import { EditorSelection, EditorState, Prec } from "@codemirror/state";
import {
  drawSelection,
  EditorView,
  highlightActiveLine,
  highlightActiveLineGutter,
  keymap,
  lineNumbers,
} from "@codemirror/view";
// tok-* classes instead of injected colours: editor.css gives them highlight.css's colours.
import { classHighlighter } from "@lezer/highlight";

const LANGUAGES = {
  python: () => python(),
  sql: () => sql({ dialect: PostgreSQL }),
};

// Typing over a selection: Chromium would merge the selected elements (lines, or the
// highlighted words of one line) natively, with style attributes that the page's CSP
// refuses (a console error for each), so the editor replaces the selection itself.
function replaceSelectionItself(event, view) {
  const { from, to } = view.state.selection.main;
  if (event.inputType !== "insertText" || !event.data || from === to) {
    return false;
  }
  event.preventDefault();
  view.dispatch(view.state.replaceSelection(event.data), { scrollIntoView: true, userEvent: "input.type" });
  return true;
}

// An editor in `parent` holding `doc`. onRun: Ctrl/Cmd-Enter; onChange(text) after edits.
// `nonce` lets CodeMirror's own style elements pass the page's Content-Security-Policy.
function create({ parent, doc, language, label, nonce, readOnly = false, onRun, onChange }) {
  const extensions = [
    lineNumbers(),
    highlightActiveLineGutter(),
    highlightActiveLine(),
    history(),
    drawSelection(),
    indentOnInput(),
    bracketMatching(),
    indentUnit.of("    "),
    EditorState.tabSize.of(4),
    syntaxHighlighting(classHighlighter),
    Prec.highest(keymap.of([{ key: "Mod-Enter", run: () => (onRun?.(), true) }])),
    keymap.of([...defaultKeymap, ...historyKeymap, indentWithTab]),
    // tabindex: the editable text is the scrolling region's focusable part, said plainly.
    EditorView.contentAttributes.of({ "aria-label": label, tabindex: "0" }),
    EditorView.domEventHandlers({ beforeinput: replaceSelectionItself }),
    EditorView.updateListener.of((update) => {
      if (update.docChanged) onChange?.(update.state.doc.toString());
    }),
    EditorState.readOnly.of(readOnly),
    EditorView.editable.of(!readOnly),
  ];
  if (nonce) extensions.push(EditorView.cspNonce.of(nonce));
  if (LANGUAGES[language]) extensions.push(LANGUAGES[language]());
  const view = new EditorView({ parent, state: EditorState.create({ doc, extensions }) });

  return {
    view,
    getCode: () => view.state.doc.toString(),
    setCode(text) {
      view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: text } });
    },
    focus: () => view.focus(),
    // Select line `number` and bring it into view (the SQL panel's line links).
    revealLine(number) {
      if (number < 1 || number > view.state.doc.lines) return;
      const line = view.state.doc.line(number);
      view.dispatch({
        selection: EditorSelection.range(line.from, line.to),
        effects: EditorView.scrollIntoView(line.from, { y: "center" }),
      });
      view.focus();
    },
  };
}

window.GlossaryEditor = { create };
document.dispatchEvent(new Event("glossary-editor-ready"));
