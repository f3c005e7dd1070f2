/* zcbench leaderboard: click-to-sort tables. No dependencies, no network, works from file://.
 *
 * A sortable table has class "zcb-sortable"; each sortable header cell holds a <button>
 * and says how to compare its column: data-type="num" or "str", and data-first="asc" or
 * "desc" (the direction of the first click: the column's "best first" order).
 * Cells may carry data-value (the raw number); empty / non-numeric values always sort last.
 * The current order is exposed as aria-sort on the header cell ("ascending"/"descending").
 */
(function () {
  "use strict";

  function cellValue(cell, type) {
    var raw = cell.getAttribute("data-value");
    if (raw === null) raw = cell.textContent.trim();
    if (type === "num") {
      var x = parseFloat(raw);
      return isFinite(x) ? x : null;
    }
    return raw.toLowerCase();
  }

  function sortBy(table, col, dir) {
    var head = table.tHead.rows[0].cells;
    var type = head[col].getAttribute("data-type") || "str";
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var keyed = rows.map(function (row, i) {
      return { row: row, key: cellValue(row.cells[col], type), i: i };
    });
    keyed.sort(function (a, b) {
      if (a.key === null && b.key === null) return a.i - b.i;
      if (a.key === null) return 1;   // missing values last, whatever the direction
      if (b.key === null) return -1;
      var c = a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
      if (dir === "desc") c = -c;
      return c !== 0 ? c : a.i - b.i;  // stable
    });
    keyed.forEach(function (k) { body.appendChild(k.row); });
    for (var j = 0; j < head.length; j++) {
      if (head[j].hasAttribute("aria-sort")) head[j].setAttribute("aria-sort", "none");
    }
    head[col].setAttribute("aria-sort", dir === "asc" ? "ascending" : "descending");
    table.setAttribute("data-sorted-by", String(col));
    table.setAttribute("data-sorted-dir", dir);
  }

  function onClick(table, th) {
    var col = th.cellIndex;
    var now = th.getAttribute("aria-sort");
    var dir;
    if (now === "ascending") dir = "desc";
    else if (now === "descending") dir = "asc";
    else dir = th.getAttribute("data-first") || (th.getAttribute("data-type") === "num" ? "desc" : "asc");
    sortBy(table, col, dir);
  }

  function init() {
    var tables = document.querySelectorAll("table.zcb-sortable");
    Array.prototype.forEach.call(tables, function (table) {
      var head = table.tHead ? table.tHead.rows[0].cells : [];
      Array.prototype.forEach.call(head, function (th) {
        var btn = th.querySelector("button");
        if (!btn) return;
        btn.addEventListener("click", function () { onClick(table, th); });
      });
    });
    document.documentElement.setAttribute("data-zcb-ready", "1");
  }

  window.zcbSortBy = sortBy;
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
