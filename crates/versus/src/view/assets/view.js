// versus view: keyboard shortcuts for blind voting. Every page works without this script; it only
// saves clicks. Served from /assets/view.js because the Content-Security-Policy allows no inline
// script. Sets window.__versusReady when done, for browser tests.
(function () {
  "use strict";

  // Key -> the data-testid of the button or link it presses. Keys whose element is not on the
  // page do nothing, so the vote page and the page after a vote can share the table.
  var shortcuts = {
    "1": "vote-left",
    "ArrowLeft": "vote-left",
    "2": "vote-right",
    "ArrowRight": "vote-right",
    "3": "vote-tie",
    "=": "vote-tie",
    "4": "vote-bothbad",
    "0": "vote-bothbad",
    "n": "vote-next",
    "Enter": "vote-next"
  };

  function typing(target) {
    if (!target || !target.tagName) {
      return false;
    }
    var tag = target.tagName.toUpperCase();
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || tag === "BUTTON" ||
      tag === "A" || target.isContentEditable;
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) {
      return;
    }
    var testid = shortcuts[event.key];
    if (!testid) {
      return;
    }
    var element = document.querySelector('[data-testid="' + testid + '"]');
    if (!element) {
      return;
    }
    event.preventDefault();
    element.click();
  });

  // One vote per page: a second press while the first is on its way would reuse the ballot.
  var form = document.querySelector('[data-testid="vote-form"]');
  if (form) {
    form.addEventListener("submit", function (event) {
      if (form.getAttribute("data-sent") === "1") {
        event.preventDefault();
        return;
      }
      form.setAttribute("data-sent", "1");
    });
  }

  // The category filters apply as soon as a category is picked.
  var selects = document.querySelectorAll("form.filter select");
  for (var i = 0; i < selects.length; i++) {
    selects[i].addEventListener("change", function (event) {
      event.target.form.submit();
    });
  }

  window.__versusReady = true;
})();
