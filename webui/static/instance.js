/* The instance diagram: bpmn-js viewer, markers and text overlays for each step's status.
   The status text is an overlay too, so colour is never the only signal. */
(function () {
  "use strict";
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
