/* Two versions side by side, the changes marked on both diagrams (bpmn-js-differ). */
(function () {
  'use strict';
  var root = document.getElementById('diff');
  if (!root || !window.LajurStudioLib) return;
  var Lib = window.LajurStudioLib;
  var left = new Lib.NavigatedViewer({ container: '#diff-a-canvas' });
  var right = new Lib.NavigatedViewer({ container: '#diff-b-canvas' });
  function load(viewer, url) {
    return fetch(url, { credentials: 'same-origin' }).then(function (r) { return r.text(); })
      .then(function (xml) { return viewer.importXML(xml); })
      .then(function () { viewer.get('canvas').zoom('fit-viewport'); return viewer.getDefinitions(); });
  }
  function mark(viewer, ids, cls) {
    var canvas = viewer.get('canvas'), registry = viewer.get('elementRegistry');
    ids.forEach(function (id) { if (registry.get(id)) canvas.addMarker(id, cls); });
  }
  Promise.all([load(left, root.dataset.aUrl), load(right, root.dataset.bUrl)]).then(function (defs) {
    var d = Lib.diff(defs[0], defs[1]);
    var added = Object.keys(d._added), removed = Object.keys(d._removed), changed = Object.keys(d._changed);
    var layout = Object.keys(d._layoutChanged);
    mark(right, added, 'diff-added');
    mark(left, removed, 'diff-removed');
    mark(left, changed, 'diff-changed');
    mark(right, changed, 'diff-changed');
    root.dataset.added = added.join(' ');
    root.dataset.removed = removed.join(' ');
    root.dataset.changed = changed.join(' ');
    root.dataset.ready = '1';
    var count = document.getElementById('diff-count');
    if (count) count.textContent = '+' + added.length + ' −' + removed.length + ' ~' + changed.length + ' (' + layout.length + ' layout)';
  }, function (err) { root.dataset.ready = 'error: ' + err; });
})();
