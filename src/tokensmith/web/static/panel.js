/* tokensmith merchant panel: small progressive enhancements. Every page works without it.
 * - copy buttons for client ids and secrets (announced in an aria-live region)
 * - choosing a merchant or key in a <select data-autosubmit> submits its form
 * - tooltips on the activity charts (the SVG <title> is the fallback)
 * Served as /static/panel.js under a CSP of script-src 'self': no inline script anywhere.
 */
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  function announce(text) {
    var region = document.getElementById("copy-status");
    if (!region) return;
    region.textContent = "";
    window.setTimeout(function () { region.textContent = text; }, 50);
  }

  function fallbackCopy(field) {
    field.focus();
    field.select();
    try { return document.execCommand("copy"); } catch (e) { return false; }
  }

  function copied(button, label, ok) {
    var original = button.getAttribute("data-original") || button.textContent;
    button.setAttribute("data-original", original);
    button.textContent = ok ? "Copied" : "Press Ctrl+C";
    button.classList.toggle("copied", ok);
    announce(ok ? label + " copied to the clipboard." : "Copy failed. The text is selected: press Ctrl+C.");
    window.setTimeout(function () {
      button.textContent = original;
      button.classList.remove("copied");
    }, 2500);
  }

  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    var field = document.getElementById(button.getAttribute("data-copy"));
    if (!field) return;
    var label = button.getAttribute("data-label") || "Text";
    button.hidden = false;
    button.setAttribute("aria-label", "Copy " + label);
    button.addEventListener("click", function () {
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(field.value).then(
          function () { copied(button, label, true); },
          function () { copied(button, label, fallbackCopy(field)); }
        );
      } else {
        copied(button, label, fallbackCopy(field));
      }
    });
  });

  document.querySelectorAll("input[readonly].mono").forEach(function (field) {
    field.addEventListener("focus", function () { field.select(); });
  });

  document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
    select.addEventListener("change", function () {
      if (select.form.requestSubmit) select.form.requestSubmit(); else select.form.submit();
    });
  });

  document.querySelectorAll("[data-chart]").forEach(function (chart) {
    var tip = chart.querySelector(".chart-tip");
    var svg = chart.querySelector("svg");
    if (!tip || !svg) return;
    function show(bar) {
      var tops = bar.querySelectorAll(".refused, .issued");
      var box = (tops.length ? tops[0] : bar).getBoundingClientRect();
      var outer = chart.getBoundingClientRect();
      chart.querySelectorAll(".bar.is-active").forEach(function (b) { b.classList.remove("is-active"); });
      bar.classList.add("is-active");
      tip.textContent = bar.getAttribute("data-tip");
      tip.hidden = false;
      tip.style.left = (box.left - outer.left + box.width / 2) + "px";
      tip.style.top = Math.max(0, box.top - outer.top - 6) + "px";
    }
    function hide() {
      tip.hidden = true;
      chart.querySelectorAll(".bar.is-active").forEach(function (b) { b.classList.remove("is-active"); });
    }
    chart.querySelectorAll(".bar").forEach(function (bar) {
      var title = bar.querySelector("title");
      if (title) title.remove(); /* our tooltip replaces the native one */
      bar.addEventListener("mouseenter", function () { show(bar); });
    });
    svg.addEventListener("mouseleave", hide);
  });
})();
