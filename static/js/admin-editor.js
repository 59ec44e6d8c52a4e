// Snippet code in the admin is edited in the readers' code editor (static/editor/), with
// the highlighting of the form's Language field. The textarea stays in the form, hidden,
// and holds what is in the editor, so the form posts it; without JavaScript it is the editor.
"use strict";

(function () {
  const script = document.currentScript;
  // CodeMirror adds style elements: they carry this script's nonce past the page's CSP.
  const NONCE = script.nonce || "";
  let loading = null;

  function loadEditor() {
    loading ??= new Promise((resolve, reject) => {
      const bundle = document.createElement("script");
      bundle.src = script.dataset.editor;
      bundle.nonce = NONCE;
      bundle.addEventListener("load", () => resolve(window.GlossaryEditor));
      bundle.addEventListener("error", reject);
      document.head.append(bundle);
    });
    return loading;
  }

  function enhance(Editor, textarea) {
    // The admin's hidden template row (__prefix__) is cloned for new inlines: skip it.
    if (textarea.dataset.editorReady || textarea.name.includes("__prefix__")) return;
    textarea.dataset.editorReady = "true";
    // "code" or "snippets-0-code": the Language select of the same form is "…language".
    const picker = textarea.form.elements[textarea.name.replace(/code$/, "language")];
    const holder = document.createElement("div");
    holder.className = "code-editor admin-code-editor";
    textarea.after(holder);
    textarea.hidden = true;
    let editor = null;

    // The editor's language is fixed when it is made: a new language makes a new editor.
    function mount() {
      editor?.view.destroy();
      editor = Editor.create({
        parent: holder,
        doc: textarea.value,
        language: picker?.value,
        label: "Code",
        nonce: NONCE,
        onChange: (text) => {
          textarea.value = text;
        },
      });
      holder.dataset.language = picker?.value || "";
    }

    mount();
    picker?.addEventListener("change", mount);
    // The label's "for" points at the hidden textarea: send its clicks to the editor.
    document.querySelector(`label[for="${textarea.id}"]`)?.addEventListener("click", (event) => {
      event.preventDefault();
      editor.focus();
    });
  }

  function enhanceAll() {
    const textareas = document.querySelectorAll("textarea.code-editor");
    if (!textareas.length) return;
    loadEditor().then(
      (Editor) => textareas.forEach((textarea) => enhance(Editor, textarea)),
      () => {}, // without the editor the textarea stays
    );
  }

  document.addEventListener("DOMContentLoaded", enhanceAll);
  document.addEventListener("formset:added", enhanceAll);
})();
