/* Supervisor dashboard charts (Chart.js, vendored under static/vendor/chart).
   The numbers come from a <script type="application/json"> next to each canvas, written by
   the server from the same table shown below the chart; so the chart is an illustration,
   the table the source. Colour is never the only signal: datasets differ in pattern
   (solid, hatched, dotted), line style and point shape, and the legend names them.
   Charts are drawn on load and again after each htmx refresh of the figures. */
(function () {
  "use strict";
  var COLORS = ["#0b5c8c", "#b35c00", "#3d3d3d", "#1c6b3a"];
  var POINTS = ["circle", "triangle", "rectRot", "rect"];
  var DASHES = [[], [6, 4], [2, 3], [10, 3, 2, 3]];

  function pattern(color, kind) {
    if (!kind) { return color; }
    var c = document.createElement("canvas");
    c.width = c.height = 8;
    var x = c.getContext("2d");
    x.fillStyle = "#ffffff"; x.fillRect(0, 0, 8, 8);
    x.strokeStyle = color; x.fillStyle = color; x.lineWidth = 2;
    if (kind === 1) { x.beginPath(); x.moveTo(0, 8); x.lineTo(8, 0); x.stroke(); }
    else { x.beginPath(); x.arc(4, 4, 1.6, 0, 2 * Math.PI); x.fill(); }
    return x.createPattern(c, "repeat");
  }

  function build(spec) {
    var datasets = spec.datasets.map(function (d, i) {
      var color = COLORS[i % COLORS.length];
      var isLine = d.type === "line";
      return {
        type: d.type || "bar", label: d.label, data: d.data,
        backgroundColor: isLine ? color : pattern(color, i % 3),
        borderColor: color, borderWidth: isLine ? 2 : 1, borderDash: isLine ? DASHES[i % DASHES.length] : [],
        pointStyle: POINTS[i % POINTS.length], pointRadius: isLine ? 4 : 0,
        yAxisID: spec.kind === "combo" ? (d.axis === "pct" ? "pct" : "count") : undefined
      };
    });
    var options = {
      responsive: true, maintainAspectRatio: false, animation: false,
      plugins: { legend: { labels: { usePointStyle: true } } }
    };
    if (spec.kind === "combo") {
      options.scales = {
        count: { type: "linear", position: "left", beginAtZero: true },
        pct: { type: "linear", position: "right", min: 0, max: 100, grid: { drawOnChartArea: false } }
      };
    } else {
      var valueAxis = { beginAtZero: true };
      if (spec.max) { valueAxis.max = spec.max; }
      options.indexAxis = spec.horizontal ? "y" : "x";
      options.scales = spec.horizontal ? { x: valueAxis } : { y: valueAxis };
    }
    return { type: "bar", data: { labels: spec.labels, datasets: datasets }, options: options };
  }

  function draw(root) {
    if (typeof window.Chart === "undefined") { return; }
    (root || document).querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      var source = document.getElementById(canvas.getAttribute("data-chart"));
      if (!source) { return; }
      var old = window.Chart.getChart(canvas);
      if (old) { old.destroy(); }
      var spec = JSON.parse(source.textContent);
      var rows = spec.labels.length;
      if (spec.horizontal) { canvas.parentNode.style.height = Math.max(160, 28 * rows + 60) + "px"; }
      new window.Chart(canvas, build(spec));
    });
  }

  document.addEventListener("DOMContentLoaded", function () { draw(document); });
  document.addEventListener("htmx:afterSettle", function (e) { draw(e.target); });
})();
