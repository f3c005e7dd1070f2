/* zcbench leaderboard: filter proxies by name and family. No dependencies, no network.
 *
 * Rows of every table with data-filterable carry data-proxy (name) and data-family. The text
 * box (#proxy-filter) keeps rows whose name contains the text (case-insensitive); the family
 * chips (button.chip[data-family], aria-pressed) keep rows of the pressed families (none
 * pressed = all). Hidden rows get the "hidden" attribute; #filter-count says how many of the
 * first table's rows are shown. The filter is kept in the URL hash (#q=...&family=...), so a
 * filtered view has a stable, shareable URL; other hashes (section anchors) are left alone.
 */
(function () {
  "use strict";

  function state() {
    var box = document.getElementById("proxy-filter");
    var text = box ? box.value.trim().toLowerCase() : "";
    var fams = [];
    Array.prototype.forEach.call(document.querySelectorAll("button.chip[data-family]"), function (b) {
      if (b.getAttribute("aria-pressed") === "true") fams.push(b.getAttribute("data-family"));
    });
    return { text: text, fams: fams };
  }

  function apply() {
    var s = state();
    var tables = document.querySelectorAll("table[data-filterable]");
    var counted = false;
    Array.prototype.forEach.call(tables, function (t) {
      var shown = 0, total = 0;
      Array.prototype.forEach.call(t.tBodies[0].rows, function (r) {
        var name = (r.getAttribute("data-proxy") || "").toLowerCase();
        var fam = r.getAttribute("data-family") || "";
        var ok = (!s.text || name.indexOf(s.text) !== -1) && (!s.fams.length || s.fams.indexOf(fam) !== -1);
        if (ok) r.removeAttribute("hidden"); else r.setAttribute("hidden", "");
        total += 1; if (ok) shown += 1;
      });
      if (!counted) {
        var c = document.getElementById("filter-count");
        if (c) c.textContent = (shown === total ? total + " proxies" : shown + " of " + total + " proxies");
        counted = true;
      }
    });
  }

  function writeHash() {
    var s = state();
    var parts = [];
    if (s.text) parts.push("q=" + encodeURIComponent(s.text));
    if (s.fams.length) parts.push("family=" + s.fams.map(encodeURIComponent).join(","));
    var h = parts.join("&");
    if (h || /^#(q|family)=/.test(location.hash)) {
      try { history.replaceState(null, "", h ? "#" + h : location.pathname + location.search); } catch (e) { /* file:// */ }
    }
  }

  function readHash() {
    var h = location.hash.replace(/^#/, "");
    if (!/^(q|family)=/.test(h)) return;
    h.split("&").forEach(function (kv) {
      var i = kv.indexOf("="), k = kv.slice(0, i), v = decodeURIComponent(kv.slice(i + 1));
      if (k === "q") { var box = document.getElementById("proxy-filter"); if (box) box.value = v; }
      if (k === "family") v.split(",").forEach(function (f) {
        var b = document.querySelector('button.chip[data-family="' + f + '"]');
        if (b) b.setAttribute("aria-pressed", "true");
      });
    });
  }

  function init() {
    var box = document.getElementById("proxy-filter");
    if (box) box.addEventListener("input", function () { apply(); writeHash(); });
    Array.prototype.forEach.call(document.querySelectorAll("button.chip[data-family]"), function (b) {
      b.addEventListener("click", function () {
        b.setAttribute("aria-pressed", b.getAttribute("aria-pressed") === "true" ? "false" : "true");
        apply(); writeHash();
      });
    });
    readHash();
    apply();
    document.documentElement.setAttribute("data-zcb-filter", "1");
  }

  window.zcbFilter = apply;
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
