// A Preview button under each Markdown field in the admin. The server renders the text the
// way readers will see it (and sanitizes it), so what the curator previews is what ships.
"use strict";

(function () {
  function csrfToken(textarea) {
    const input = textarea.form?.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  async function preview(textarea, output) {
    const body = new FormData();
    body.append("text", textarea.value);
    output.hidden = false;
    output.textContent = "Rendering…";
    try {
      const response = await fetch(textarea.dataset.previewUrl, {
        method: "POST",
        body,
        headers: { "X-CSRFToken": csrfToken(textarea) },
        credentials: "same-origin",
      });
      if (response.ok) {
        output.innerHTML = await response.text(); // sanitized HTML from render_markdown()
      } else {
        output.textContent = `No preview: ${await response.text()}`;
      }
    } catch {
      output.textContent = "No preview: the server could not be reached.";
    }
  }

  function addButton(textarea) {
    // The admin's hidden template row (__prefix__) is cloned for new inlines: skip it.
    if (textarea.dataset.previewReady || textarea.name.includes("__prefix__")) return;
    textarea.dataset.previewReady = "true";
    const button = document.createElement("button");
    button.type = "button";
    button.className = "button markdown-preview-button";
    button.textContent = "Preview";
    const output = document.createElement("div");
    output.className = "markdown-preview";
    output.hidden = true;
    output.setAttribute("aria-live", "polite");
    textarea.after(button, output);
    button.addEventListener("click", () => preview(textarea, output));
  }

  function addButtons() {
    document.querySelectorAll("textarea.markdown-input").forEach(addButton);
  }

  document.addEventListener("DOMContentLoaded", addButtons);
  document.addEventListener("formset:added", addButtons);
})();
