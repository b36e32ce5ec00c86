// The HTML report's only script, inlined into the page (its hash is in the page's
// Content-Security-Policy). It reads data attributes the report wrote and toggles `hidden` and
// one attribute on <html>; it never parses or inserts HTML (no innerHTML) and never fetches.
(function () {
  "use strict";
  var root = document.documentElement;
  var THEME_KEY = "versus-report-theme";

  // localStorage can throw (file:// pages in some browsers, privacy modes): the theme then simply
  // is not remembered.
  function savedTheme() {
    try {
      return window.localStorage.getItem(THEME_KEY);
    } catch (error) {
      return null;
    }
  }
  function saveTheme(theme) {
    try {
      window.localStorage.setItem(THEME_KEY, theme);
    } catch (error) {
      /* not remembered */
    }
  }
  function systemTheme() {
    return window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches
      ? "dark"
      : "light";
  }
  function currentTheme() {
    var chosen = root.getAttribute("data-theme");
    return chosen === "light" || chosen === "dark" ? chosen : systemTheme();
  }

  // Applied before the body is parsed, so a remembered theme does not flash.
  var remembered = savedTheme();
  if (remembered === "light" || remembered === "dark") {
    root.setAttribute("data-theme", remembered);
  }

  function setUpThemeToggle() {
    var toggle = document.getElementById("theme-toggle");
    if (!toggle) {
      return;
    }
    function label() {
      var next = currentTheme() === "dark" ? "light" : "dark";
      toggle.textContent = next === "dark" ? "Dark theme" : "Light theme";
      toggle.setAttribute("aria-label", "Switch to the " + next + " theme");
    }
    toggle.addEventListener("click", function () {
      var next = currentTheme() === "dark" ? "light" : "dark";
      root.setAttribute("data-theme", next);
      saveTheme(next);
      label();
    });
    label();
    toggle.hidden = false;
  }

  function setUpFilters() {
    var bar = document.getElementById("filters");
    var category = document.getElementById("filter-category");
    var disagreements = document.getElementById("filter-disagreements");
    var failed = document.getElementById("filter-failed");
    var count = document.getElementById("filter-count");
    var none = document.getElementById("filter-none");
    if (!bar || !category || !disagreements || !failed) {
      return;
    }
    var tasks = Array.prototype.slice.call(document.querySelectorAll("section.task"));
    function apply() {
      var shown = 0;
      tasks.forEach(function (task) {
        var visible =
          (category.value === "" || task.getAttribute("data-category") === category.value) &&
          (!disagreements.checked || task.getAttribute("data-disagreement") === "true") &&
          (!failed.checked || task.getAttribute("data-failed-checks") === "true");
        task.hidden = !visible;
        var entry = document.querySelector('[data-toc-for="' + task.id + '"]');
        if (entry) {
          entry.hidden = !visible;
        }
        if (visible) {
          shown += 1;
        }
      });
      if (count) {
        count.textContent = shown + " of " + tasks.length + " tasks shown";
      }
      if (none) {
        none.hidden = shown !== 0;
      }
    }
    category.addEventListener("change", apply);
    disagreements.addEventListener("change", apply);
    failed.addEventListener("change", apply);
    apply();
    bar.hidden = false;
  }

  function ready() {
    setUpThemeToggle();
    setUpFilters();
    // Browser tests wait for this.
    window.__versusReady = true;
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", ready);
  } else {
    ready();
  }
})();
