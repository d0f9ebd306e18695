/* The instance diagram: bpmn-js viewer, markers and text overlays for each step's status.
   The status text is an overlay too, so colour is never the only signal. */
(function () {
  "use strict";
  var READABLE = 0.8;
  function init() {
    var holder = document.getElementById("diagram");
    var dataEl = document.getElementById("diagram-data");
    if (!holder || !dataEl || typeof window.BpmnJS === "undefined") { return; }
    var data = JSON.parse(dataEl.textContent);
    var viewer = new window.BpmnJS({ container: holder });
    viewer.importXML(data.xml).then(function () {
      var canvas = viewer.get("canvas");
      var overlays = viewer.get("overlays");
      var registry = viewer.get("elementRegistry");
      canvas.zoom("fit-viewport", "auto");
      // Fitting a wide SOP into the box drew it at about half size with unreadable labels: below
      // a readable scale, draw it at full size (the box as tall as the diagram, within limits)
      // and scroll to the current step; the diagram can be dragged to see the rest.
      if (canvas.zoom() < READABLE) {
        var inner = canvas.viewbox().inner;
        holder.style.height = Math.max(320, Math.min(720, Math.round(inner.height + 80))) + "px";
        canvas.resized();
        canvas.zoom(1);
        var current = data.marks.filter(function (m) { return m.current; })[0];
        var target = current && registry.get(current.id);
        var vb = canvas.viewbox();
        var x = target ? target.x + target.width / 2 - vb.width / 2 : inner.x - 20;
        // vertically too: a step in a low lane of a tall SOP was cut off at the box's bottom edge
        var y = target ? target.y + target.height / 2 - vb.height / 2 : inner.y - 40;
        y = Math.max(inner.y - 40, Math.min(y, inner.y + inner.height + 40 - vb.height));
        canvas.viewbox({ x: Math.max(inner.x - 20, x), y: y, width: vb.width, height: vb.height });
      }
      holder.setAttribute("data-scale", String(Math.round(canvas.zoom() * 100) / 100));
      data.marks.forEach(function (m) {
        if (!registry.get(m.id)) { return; }
        canvas.addMarker(m.id, m.marker);
        if (m.current) { canvas.addMarker(m.id, "lajur-current"); }
        var note = document.createElement("div");
        note.className = "lajur-note " + m.marker + (m.current ? " is-current" : "");
        note.textContent = m.text;
        overlays.add(m.id, { position: { top: -20, left: 0 }, html: note });
      });
      holder.setAttribute("data-ready", "1");
    }).catch(function (err) {
      holder.textContent = "Diagram tidak dapat ditampilkan: " + err.message;
    });
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", init); } else { init(); }
})();
