// Previews of linked terms: hovering or focusing a term link shows a card with the
// topic's name, kind and first sentences, fetched once from /topics/<slug>/preview/.
// Escape closes it. On touch screens the first tap shows the card and a second tap on
// the same link follows it. Without JavaScript the links are plain links.
(function () {
  "use strict";

  var SHOW_DELAY = 250;
  var HIDE_DELAY = 200;
  var GAP = 8;
  var fragments = new Map(); // preview URL -> Promise of the card's HTML, or null
  var card = null;
  var current = null; // the link whose card is shown
  var tapped = null; // on touch screens, the link tapped once
  var lastPointer = "mouse";
  var showTimer = 0;
  var hideTimer = 0;

  function previewUrl(link) {
    return new URL(link.href).pathname + "preview/";
  }

  function fetchFragment(link) {
    var url = previewUrl(link);
    if (!fragments.has(url)) {
      fragments.set(
        url,
        fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } })
          .then(function (response) {
            return response.ok ? response.text() : null;
          })
          .catch(function () {
            return null;
          })
      );
    }
    return fragments.get(url);
  }

  function place(link) {
    // Fixed position below the link (its last line, if it wraps): the page never moves.
    var lines = link.getClientRects();
    var box = lines.length ? lines[lines.length - 1] : link.getBoundingClientRect();
    var width = card.offsetWidth;
    var height = card.offsetHeight;
    var left = Math.min(box.left, window.innerWidth - width - GAP);
    var top = box.bottom + GAP;
    if (top + height > window.innerHeight && box.top - GAP - height > 0) {
      top = box.top - GAP - height;
    }
    card.style.left = Math.max(GAP, left) + "px";
    card.style.top = top + "px";
  }

  function show(link) {
    window.clearTimeout(hideTimer);
    fetchFragment(link).then(function (html) {
      if (html === null) {
        return;
      }
      var body = new DOMParser().parseFromString(html, "text/html").body;
      card.replaceChildren.apply(card, Array.from(body.childNodes));
      if (current && current !== link) {
        current.removeAttribute("aria-describedby");
      }
      current = link;
      link.setAttribute("aria-describedby", card.id);
      card.hidden = false;
      place(link);
    });
  }

  function hide() {
    window.clearTimeout(showTimer);
    card.hidden = true;
    tapped = null;
    if (current) {
      current.removeAttribute("aria-describedby");
      current = null;
    }
  }

  function hideSoon() {
    window.clearTimeout(showTimer);
    window.clearTimeout(hideTimer);
    hideTimer = window.setTimeout(hide, HIDE_DELAY);
  }

  function termLink(event) {
    return event.target.closest ? event.target.closest("a.term-link") : null;
  }

  function init() {
    card = document.createElement("div");
    card.id = "term-preview";
    card.className = "term-preview";
    card.setAttribute("role", "tooltip");
    card.hidden = true;
    document.body.appendChild(card);

    document.addEventListener("pointerdown", function (event) {
      lastPointer = event.pointerType;
      if (event.pointerType === "touch" && !termLink(event) && !card.contains(event.target)) {
        hide();
      }
    });
    // Hover means a mouse or pen: a finger's pointerover comes with the tap itself.
    document.addEventListener("pointerover", function (event) {
      var link = termLink(event);
      if (link && event.pointerType !== "touch") {
        window.clearTimeout(showTimer);
        window.clearTimeout(hideTimer);
        showTimer = window.setTimeout(function () {
          show(link);
        }, SHOW_DELAY);
      }
    });
    document.addEventListener("pointerout", function (event) {
      if (termLink(event) && event.pointerType !== "touch") {
        hideSoon();
      }
    });
    card.addEventListener("pointerover", function () {
      window.clearTimeout(hideTimer);
    });
    card.addEventListener("pointerout", function (event) {
      if (event.pointerType !== "touch") {
        hideSoon();
      }
    });
    document.addEventListener("focusin", function (event) {
      var link = termLink(event);
      if (link && lastPointer !== "touch") {
        show(link);
      }
    });
    document.addEventListener("focusout", function (event) {
      if (termLink(event) && lastPointer !== "touch") {
        hide();
      }
    });
    document.addEventListener("click", function (event) {
      var link = termLink(event);
      if (link && lastPointer === "touch" && tapped !== link) {
        // First tap shows the card; a second tap on the same link follows it.
        event.preventDefault();
        tapped = link;
        show(link);
      }
    });
    document.addEventListener("keydown", function (event) {
      lastPointer = "keyboard";
      if (event.key === "Escape" && !card.hidden) {
        hide();
      }
    });
    window.addEventListener("scroll", function () {
      if (current) {
        place(current);
      }
    }, { passive: true });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
