// Copy buttons for code snippets. Without JavaScript (or without the Clipboard API)
// the buttons stay hidden and the code is still there to select.
(function () {
  "use strict";

  if (!navigator.clipboard || !window.isSecureContext) {
    return;
  }

  function copyCode(button) {
    var block = button.closest(".code-block");
    var code = block.querySelector("pre");
    var status = block.querySelector(".copy-status");
    var label = button.firstChild;
    // With the editor (run.js), the code is what the reader has in it.
    var text = block.editorText ? block.editorText() : code.textContent.replace(/\n$/, "");
    navigator.clipboard.writeText(text).then(
      function () {
        label.textContent = "Copied";
        status.textContent = "Code copied to the clipboard.";
        button.classList.add("is-copied");
        window.setTimeout(function () {
          label.textContent = "Copy";
          status.textContent = "";
          button.classList.remove("is-copied");
        }, 2000);
      },
      function () {
        status.textContent = "Could not copy: select the code and copy it by hand.";
      }
    );
  }

  function init() {
    document.querySelectorAll("button[data-copy]").forEach(function (button) {
      button.hidden = false;
      button.addEventListener("click", function () {
        copyCode(button);
      });
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
