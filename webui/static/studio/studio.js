/* The process studio's editor: the bpmn-js modeler over the SOP's draft, Lajur's own panel
   (step, decision, lane, SOP card, form designer), a save of the whole process folder after
   every change, and the server's problems marked on the diagram. No rule is decided here:
   the server checks each save with deploy's validator. */
(function () {
  'use strict';
  var root = document.getElementById('studio');
  if (!root || !window.LajurStudioLib) return;
  var T = JSON.parse(document.getElementById('studio-texts').textContent);
  var csrf = (document.querySelector('meta[name=csrf-token]') || {}).content || '';
  var Lib = window.LajurStudioLib, Forms = window.LajurForms;
  var SOP = 'sop.json', BPMN = 'process.bpmn';
  var state = { files: {}, lockVersion: 0, groups: [], problems: [], saving: false, again: false, timer: null,
                marked: [], selected: null, loaded: false };

  var modeler = new Lib.Modeler({
    container: '#canvas',
    propertiesPanel: { parent: '#props' },
    additionalModules: [Lib.BpmnPropertiesPanelModule, Lib.BpmnPropertiesProviderModule],
    moddleExtensions: { spiffworkflow: window.LajurSpiffModdle }
  });
  var canvas = modeler.get('canvas'), registry = modeler.get('elementRegistry'), modeling = modeler.get('modeling'),
      moddle = modeler.get('moddle'), eventBus = modeler.get('eventBus'), overlays = modeler.get('overlays'),
      bpmnFactory = modeler.get('bpmnFactory'), elementFactory = modeler.get('elementFactory'),
      selection = modeler.get('selection');
  var panel = document.getElementById('lajur-panel');
  var statusEl = document.getElementById('save-status');
  var lockInput = document.getElementById('lock-version');
  var publishBtn = document.getElementById('publish');

  /* ---- small DOM helpers (text always through textContent: everything shown escaped) ---- */
  var uid = 0;
  function h(tag, attrs, children) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === 'text') e.textContent = attrs[k];
      else if (k === 'on') Object.keys(attrs.on).forEach(function (ev) { e.addEventListener(ev, attrs.on[ev]); });
      else if (attrs[k] === true) e.setAttribute(k, '');
      else if (attrs[k] !== false && attrs[k] !== null && attrs[k] !== undefined) e.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { if (c) e.appendChild(typeof c === 'string' ? document.createTextNode(c) : c); });
    return e;
  }
  function field(label, input, hint) {
    var id = input.id || ('lp-' + (++uid));
    input.id = id;
    return h('div', { 'class': 'field' }, [h('label', { 'for': id, text: label }), hint ? h('p', { 'class': 'hint', text: hint }) : null, input]);
  }
  function textInput(value, onchange, attrs) {
    var a = Object.assign({ type: 'text', value: value || '' }, attrs || {});
    a.on = { change: function (e) { onchange(e.target.value); } };
    return h('input', a);
  }
  function textArea(value, onchange, rows) {
    var t = h('textarea', { rows: rows || 2, on: { change: function (e) { onchange(e.target.value); } } });
    t.value = value || '';
    return t;
  }
  function select(options, value, onchange) {
    var s = h('select', { on: { change: function (e) { onchange(e.target.value); } } });
    options.forEach(function (o) {
      var opt = h('option', { value: o[0], text: o[1] });
      if (o[0] === value) opt.selected = true;
      s.appendChild(opt);
    });
    return s;
  }

  /* ---- the draft's files ---- */
  function readJson(name, fallback) {
    try { return JSON.parse(state.files[name]); } catch (e) { return fallback; }
  }
  function writeJson(name, obj) { state.files[name] = JSON.stringify(obj, null, 2) + '\n'; }
  function sop() { var s = readJson(SOP, {}); s.steps = s.steps || {}; return s; }

  /* ---- spiffworkflow:properties on an element ---- */
  function props(bo) {
    var out = {};
    ((bo.extensionElements && bo.extensionElements.values) || []).forEach(function (v) {
      if (v.$type === 'spiffworkflow:Properties') (v.properties || []).forEach(function (p) { out[p.name] = p.value; });
    });
    return out;
  }
  function setProp(element, name, value) {
    var bo = element.businessObject, ext = bo.extensionElements;
    if (!ext) { ext = moddle.create('bpmn:ExtensionElements', { values: [] }); ext.$parent = bo; }
    var values = ext.values || [];
    var box = values.filter(function (v) { return v.$type === 'spiffworkflow:Properties'; })[0];
    if (!box) { box = moddle.create('spiffworkflow:Properties', { properties: [] }); box.$parent = ext; values = values.concat([box]); }
    var list = (box.properties || []).filter(function (p) { return p.name !== name; });
    if (value !== null && value !== undefined && value !== '') {
      var p = moddle.create('spiffworkflow:Property', { name: name, value: String(value) });
      p.$parent = box;
      list.push(p);
    }
    box.properties = list;
    ext.values = values;
    modeling.updateProperties(element, { extensionElements: ext });
  }

  /* ---- Mutu Baku: the step's non-interrupting timer boundary event ---- */
  function timerOf(task) {
    return (task.attachers || []).filter(function (a) {
      var defs = a.businessObject.eventDefinitions || [];
      return a.type === 'bpmn:BoundaryEvent' && defs[0] && defs[0].$type === 'bpmn:TimerEventDefinition';
    })[0];
  }
  function minutesOf(timer) {
    if (!timer) return '';
    var td = timer.businessObject.eventDefinitions[0].timeDuration;
    var text = ((td && td.body) || '').trim().replace(/^["']|["']$/g, '');
    var m = /^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?)?$/i.exec(text);
    if (!m) return '';
    return (+(m[1] || 0)) * 450 + (+(m[2] || 0)) * 60 + (+(m[3] || 0));
  }
  function addTimer(task, minutes) {
    var bo = bpmnFactory.create('bpmn:BoundaryEvent', { cancelActivity: false });
    var shape = elementFactory.createShape({ type: 'bpmn:BoundaryEvent', businessObject: bo,
                                             eventDefinitionType: 'bpmn:TimerEventDefinition' });
    var timer = modeling.createShape(shape, { x: task.x + task.width - 18, y: task.y + task.height }, task, { attach: true });
    var end = modeling.appendShape(timer, { type: 'bpmn:EndEvent' },
                                   { x: timer.x + 90, y: timer.y + 60 }, task.parent);
    modeling.updateLabel(end, 'Mutu Baku terlampaui');
    setMinutes(timer, minutes);
    return timer;
  }
  function setMinutes(timer, minutes) {
    var def = timer.businessObject.eventDefinitions[0];
    modeling.updateModdleProperties(timer, def, { timeDuration: moddle.create('bpmn:FormalExpression', { body: 'PT' + minutes + 'M' }) });
    modeling.updateProperties(timer, { name: 'Mutu Baku ' + minutes + ' menit', cancelActivity: false });
  }
  function userTasks() { return registry.filter(function (e) { return e.type === 'bpmn:UserTask'; }); }

  /* Keep what Lajur reads in step with the diagram: every step has its timer, a form file and
     an entry in sop.json; removed steps lose theirs. Returns true if the diagram changed. */
  function syncFiles() {
    var changedDiagram = false, card = sop(), forms = {};
    userTasks().forEach(function (t) {
      if (!timerOf(t)) { addTimer(t, 60); changedDiagram = true; }
      var p = props(t.businessObject), form = p.formJsonSchemaFilename;
      if (!form) { form = 'forms/' + t.id + '.schema.json'; setProp(t, 'formJsonSchemaFilename', form); changedDiagram = true; }
      forms[form] = true;
      if (!state.files[form]) writeJson(form, Forms.emptySchema(t.businessObject.name || t.id));
      if (!card.steps[t.id]) card.steps[t.id] = { text: t.businessObject.name || t.id };
    });
    var ids = userTasks().map(function (t) { return t.id; });
    Object.keys(card.steps).forEach(function (id) { if (ids.indexOf(id) < 0) delete card.steps[id]; });
    Object.keys(state.files).forEach(function (name) {
      if (name.indexOf('forms/') === 0 && !forms[name]) delete state.files[name];
    });
    if (state.files[SOP]) writeJson(SOP, card);
    return changedDiagram;
  }

  /* ---- saving: the whole folder, answered with the validator's problems ---- */
  function status(text, bad) {
    statusEl.textContent = text;
    statusEl.classList.toggle('status-bad', !!bad);
  }
  function changed() {
    status(T.unsaved);
    if (publishBtn) publishBtn.disabled = true;
    clearTimeout(state.timer);
    state.timer = setTimeout(save, 500);
  }
  function save() {
    if (state.saving) { state.again = true; return; }
    if (syncFiles()) return;  // the diagram changed: its own change event saves again
    state.saving = true;
    status(T.saving);
    modeler.saveXML({ format: true }).then(function (r) {
      state.files[BPMN] = r.xml;
      return fetch(root.dataset.saveUrl, {
        method: 'POST', credentials: 'same-origin',
        headers: { 'Content-Type': 'application/json', 'X-CSRFToken': csrf },
        body: JSON.stringify({ files: state.files, lock_version: state.lockVersion })
      });
    }).then(function (resp) {
      return resp.json().then(function (body) { return { ok: resp.ok, status: resp.status, body: body }; });
    }).then(function (r) {
      if (r.ok) {
        state.lockVersion = r.body.lock_version;
        lockInput.value = r.body.lock_version;
        showProblems(r.body.problems);
        status(T.saved + (r.body.editor ? ' · ' + T.by + ' ' + r.body.editor : ''));
      } else if (r.status === 409) {
        status(T.conflict + (r.body.detail ? ' (' + r.body.detail + ')' : ''), true);
      } else {
        status(T.error + ': ' + (r.body.error || r.status), true);
      }
    }).catch(function (err) {
      status(T.error + ': ' + err, true);
    }).then(function () {
      state.saving = false;
      if (state.again) { state.again = false; save(); }
    });
  }

  /* ---- problems: listed with a sentence each, marked on their elements ---- */
  function showProblems(list) {
    state.problems = list || [];
    state.marked.forEach(function (id) { if (registry.get(id)) canvas.removeMarker(id, 'lajur-problem'); });
    overlays.remove({ type: 'lajur-problem' });
    state.marked = [];
    var ul = document.getElementById('problems');
    ul.textContent = '';
    state.problems.forEach(function (p) {
      var where = p.file ? ' (' + p.file + (p.line ? ':' + p.line : '') + (p.element_id ? ', ' + p.element_id : '') + ')' : '';
      var li = h('li', { 'class': 'problem', 'data-element': p.element_id || '' }, [p.message + where]);
      var el = p.element_id && registry.get(p.element_id);
      if (el) {
        canvas.addMarker(el.id, 'lajur-problem');
        state.marked.push(el.id);
        var badge = h('span', { 'class': 'problem-badge', title: p.message, text: '!' });
        overlays.add(el.id, 'lajur-problem', { position: { top: -10, right: 10 }, html: badge });
        li.appendChild(h('button', { type: 'button', 'class': 'btn btn-link', text: '→', 'aria-label': p.element_id,
                                     on: { click: function () { selection.select(el); canvas.scrollToElement(el); } } }));
      }
      ul.appendChild(li);
    });
    if (!state.problems.length) ul.appendChild(h('li', { 'class': 'ok', text: T.no_problems }));
    document.getElementById('problem-count').textContent = state.problems.length;
    if (publishBtn) publishBtn.disabled = state.problems.length > 0;
  }

  /* ---- lanes ---- */
  function lanes() { return registry.filter(function (e) { return e.type === 'bpmn:Lane'; }); }
  function laneOf(el) {
    return lanes().filter(function (l) { return (l.businessObject.flowNodeRef || []).indexOf(el.businessObject) >= 0; })[0];
  }
  function moveToLane(task, name) {
    var target = lanes().filter(function (l) { return (l.businessObject.name || '').trim() === name; })[0];
    if (!target) {
      var all = lanes();
      if (!all.length) return;
      var last = all.reduce(function (a, b) { return (b.y + b.height > a.y + a.height) ? b : a; });
      target = modeling.addLane(last, 'bottom');
      modeling.updateLabel(target, name);
    }
    var dy = (target.y + target.height / 2) - (task.y + task.height / 2);
    if (Math.abs(dy) > 1) modeling.moveElements([task], { x: 0, y: dy }, task.parent);
  }
  function groupOptions(current) {
    var opts = state.groups.map(function (g) { return [g, g]; });
    if (current && state.groups.indexOf(current) < 0) opts.unshift([current, current + ' ' + T.other_groups]);
    if (!current) opts.unshift(['', T.not_in_lane]);
    return opts;
  }

  /* ---- the panel ---- */
  function renderPanel(el) {
    state.selected = el || null;
    panel.textContent = '';
    if (el && el.type === 'label') el = el.labelTarget;
    if (el && el.type === 'bpmn:BoundaryEvent' && el.host && el.host.type === 'bpmn:UserTask') el = el.host;
    if (el && el.type === 'bpmn:UserTask') return stepPanel(el);
    if (el && el.type === 'bpmn:ExclusiveGateway') return decisionPanel(el);
    if (el && el.type === 'bpmn:Lane') return lanePanel(el);
    panel.appendChild(h('p', { 'class': 'hint', text: T.select_hint }));
    cardPanel();
  }

  function stepPanel(task) {
    var bo = task.businessObject, p = props(bo), card = sop(), step = card.steps[task.id] || {};
    var lane = laneOf(task), laneName = lane ? (lane.businessObject.name || '').trim() : '';
    panel.appendChild(h('h2', { text: T.step + ' · ' + task.id }));
    panel.appendChild(field(T.name, textInput(bo.name, function (v) { modeling.updateLabel(task, v); }, { id: 'lp-name' })));
    panel.appendChild(field(T.lane, select(groupOptions(laneName), laneName, function (v) { if (v) moveToLane(task, v); }), null));
    panel.lastChild.querySelector('select').id = 'lp-lane';
    var minutes = textInput(String(minutesOf(timerOf(task))), function (v) {
      var n = parseInt(v, 10);
      if (!(n > 0)) return;
      var t = timerOf(task);
      if (t) setMinutes(t, n); else addTimer(task, n);
    }, { type: 'number', min: '1', step: '1', id: 'lp-mutu-baku', inputmode: 'numeric' });
    panel.appendChild(field(T.mutu_baku, minutes));
    var paraf = h('input', { type: 'checkbox', id: 'lp-paraf', on: { change: function (e) { setProp(task, 'paraf', e.target.checked ? 'true' : null); } } });
    paraf.checked = (p.paraf || '').toLowerCase() === 'true';
    panel.appendChild(h('div', { 'class': 'field' }, [h('label', { 'class': 'choice', 'for': 'lp-paraf' }, [paraf, ' ' + T.paraf])]));
    panel.appendChild(field(T.reminders, textInput(p.reminders, function (v) { setProp(task, 'reminders', v.trim() || null); }, { id: 'lp-reminders' }), T.reminders_hint));
    function stepText(key, label, id) {
      panel.appendChild(field(label, textArea(step[key], function (v) {
        var c = sop();
        c.steps[task.id] = c.steps[task.id] || { text: bo.name || task.id };
        if (v.trim()) c.steps[task.id][key] = v.trim(); else if (key !== 'text') delete c.steps[task.id][key];
        writeJson(SOP, c);
        changed();
      })));
      panel.lastChild.querySelector('textarea').id = id;
    }
    stepText('text', T.text, 'lp-text');
    stepText('requirements_text', T.requirements, 'lp-requirements');
    stepText('output', T.output, 'lp-output');
    formDesigner(task, p.formJsonSchemaFilename || ('forms/' + task.id + '.schema.json'));
  }

  function slugName(label, taken) {
    var base = (label || 'isian').toLowerCase().normalize('NFKD').replace(/[^a-z0-9]+/g, '_').replace(/^_+|_+$/g, '').slice(0, 40) || 'isian';
    var name = base, n = 2;
    while (taken.indexOf(name) >= 0) name = base + '_' + (n++);
    return name;
  }

  function formDesigner(task, path) {
    var box = h('section', { 'class': 'form-designer', id: 'form-designer' });
    panel.appendChild(box);
    function schema() { return readJson(path, Forms.emptySchema(task.businessObject.name)); }
    function commit(s) { writeJson(path, s); preview(s); changed(); }
    function draw() {
      box.textContent = '';
      box.appendChild(h('h3', { text: T.form + ' · ' + path }));
      var s = schema();
      Forms.fields(s).forEach(function (f, i) {
        var row = h('fieldset', { 'class': 'form-field', 'data-field': f.name });
        row.appendChild(h('legend', { text: (i + 1) + '. ' + f.label }));
        function update(key, value, redraw) {
          var cur = Forms.fields(schema()).filter(function (x) { return x.name === f.name; })[0] || f;
          var old = cur.name;
          cur[key] = value;
          commit(Forms.setField(schema(), cur, old));
          if (redraw) draw();
        }
        row.appendChild(field(T.field_label, textInput(f.label, function (v) { update('label', v, true); }, { 'class': 'ff-label' })));
        row.appendChild(field(T.field_name, textInput(f.name, function (v) {
          if (/^[A-Za-z_][A-Za-z0-9_]{0,63}$/.test(v)) update('name', v, true);
        }, { 'class': 'ff-name', pattern: '[A-Za-z_][A-Za-z0-9_]{0,63}' })));
        var types = Forms.TYPES.map(function (t) { return [t, T['t_' + t]]; });
        if (f.type === 'other') types.push(['other', T.t_other]);
        var typeSel = select(types, f.type, function (v) { update('type', v, true); });
        typeSel.className = 'ff-type';
        row.appendChild(field(T.field_type, typeSel));
        var req = h('input', { type: 'checkbox', 'class': 'ff-required', on: { change: function (e) { update('required', e.target.checked); } } });
        req.checked = f.required;
        row.appendChild(h('label', { 'class': 'choice' }, [req, ' ' + T.required]));
        row.appendChild(field(T.help, textInput(f.help, function (v) { update('help', v); }, { 'class': 'ff-help' })));
        if (f.type === 'choice') {
          row.appendChild(field(T.choices, textArea(f.choices.join('\n'), function (v) {
            update('choices', v.split('\n').map(function (c) { return c.trim(); }).filter(Boolean));
          }, 3)));
        }
        row.appendChild(h('button', { type: 'button', 'class': 'btn btn-link ff-remove', text: T.remove,
                                      on: { click: function () { commit(Forms.removeField(schema(), f.name)); draw(); } } }));
        box.appendChild(row);
      });
      box.appendChild(h('button', { type: 'button', 'class': 'btn', id: 'ff-add', text: T.add_field, on: { click: function () {
        var s2 = schema(), name = slugName(T.field_label, Object.keys(s2.properties || {}));
        commit(Forms.setField(s2, { name: name, label: T.field_label, type: 'text', required: false, help: '', choices: [] }));
        draw();
      } } }));
      box.appendChild(h('h3', { text: T.preview }));
      box.appendChild(h('div', { id: 'form-preview', 'class': 'form-preview-box' }));
      preview(s);
    }
    draw();
  }

  var previewSeq = 0;
  function preview(schema) {
    var seq = ++previewSeq;
    fetch(root.dataset.previewUrl, { method: 'POST', credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json', 'X-CSRFToken': csrf }, body: JSON.stringify({ schema: schema }) })
      .then(function (r) { return r.text(); })
      .then(function (html) {
        var box = document.getElementById('form-preview');
        if (box && seq === previewSeq) box.innerHTML = html;  // rendered and escaped by the server's templates
      });
  }

  function fieldsBefore(node) {
    var seen = {}, todo = [node], out = [];
    while (todo.length) {
      var n = todo.pop();
      (n.incoming || []).forEach(function (flow) {
        var src = flow.source;
        if (!src || seen[src.id]) return;
        seen[src.id] = true;
        if (src.type === 'bpmn:UserTask') {
          var path = props(src.businessObject).formJsonSchemaFilename;
          Forms.fields(readJson(path, { properties: {} })).forEach(function (f) { out.push({ step: src, f: f }); });
        }
        todo.push(src);
      });
    }
    return out;
  }

  function decisionPanel(gw) {
    panel.appendChild(h('h2', { text: T.decision + ' · ' + gw.id }));
    panel.appendChild(field(T.name, textInput(gw.businessObject.name, function (v) { modeling.updateLabel(gw, v); }, { id: 'lp-name' })));
    var earlier = fieldsBefore(gw);
    (gw.outgoing || []).forEach(function (flow, i) {
      var bo = flow.businessObject, cond = bo.conditionExpression ? (bo.conditionExpression.body || '') : '';
      var target = flow.target ? (flow.target.businessObject.name || flow.target.id) : '?';
      var sec = h('fieldset', { 'class': 'branch', 'data-flow': flow.id });
      sec.appendChild(h('legend', { text: T.branch_to + ': ' + target + (bo.name ? ' (' + bo.name + ')' : '') }));
      var condInput = textInput(cond, function (v) { setCondition(flow, v.trim()); }, { 'class': 'cond', id: 'lp-cond-' + i });
      sec.appendChild(field(T.condition, condInput));
      var pick = select([['', '—']].concat(earlier.map(function (x) { return [x.f.name, x.f.label + ' (' + x.f.name + ')']; })), '', function () { fillValues(); });
      pick.className = 'pick-field';
      var values = select([], '', function () {});
      values.className = 'pick-value';
      function fillValues() {
        values.textContent = '';
        var chosen = earlier.filter(function (x) { return x.f.name === pick.value; })[0];
        var opts = chosen ? (chosen.f.type === 'yesno' ? ['YA', 'TIDAK'] : chosen.f.choices) : [];
        opts.forEach(function (o) { values.appendChild(h('option', { value: o, text: o })); });
      }
      sec.appendChild(field(T.pick_field, pick));
      sec.appendChild(field(T.pick_value, values));
      sec.appendChild(h('button', { type: 'button', 'class': 'btn pick-use', text: T.use, on: { click: function () {
        if (!pick.value || !values.value) return;
        var expr = pick.value + ' == ' + JSON.stringify(values.value);
        condInput.value = expr;
        setCondition(flow, expr);
        if (!bo.name) modeling.updateLabel(flow, values.value);
      } } }));
      panel.appendChild(sec);
    });
  }
  function setCondition(flow, expr) {
    modeling.updateProperties(flow, { conditionExpression: expr ? moddle.create('bpmn:FormalExpression', { body: expr }) : undefined });
  }

  function lanePanel(lane) {
    var name = (lane.businessObject.name || '').trim();
    panel.appendChild(h('h2', { text: T.lane_title + ' · ' + lane.id }));
    var s = select(groupOptions(name), name, function (v) { if (v) modeling.updateLabel(lane, v); });
    s.id = 'lp-lane-group';
    panel.appendChild(field(T.lane_group, s));
  }

  function cardPanel() {
    var card = sop();
    panel.appendChild(h('h2', { text: T.card }));
    function set(key, value) {
      var c = sop();
      if (value === '' || (Array.isArray(value) && !value.length)) delete c[key]; else c[key] = value;
      writeJson(SOP, c);
      changed();
    }
    [['name', T.sop_name, 'text'], ['number', T.number, 'text'], ['approved_by', T.approved_by, 'text'],
     ['created', T.created, 'date'], ['revised', T.revised, 'date'], ['approved', T.approved, 'date']].forEach(function (f) {
      panel.appendChild(field(f[1], textInput(card[f[0]] || '', function (v) { set(f[0], v.trim()); }, { type: f[2], id: 'card-' + f[0] })));
    });
    panel.appendChild(field(T.warning, textArea(card.warning || '', function (v) { set('warning', v.trim()); })));
    [['legal_basis', T.legal_basis], ['qualifications', T.qualifications], ['equipment', T.equipment],
     ['records', T.records], ['related_sops', T.related]].forEach(function (f) {
      panel.appendChild(field(f[1], textArea((card[f[0]] || []).join('\n'), function (v) {
        set(f[0], v.split('\n').map(function (x) { return x.trim(); }).filter(Boolean));
      }, 3)));
    });
    var sup = h('fieldset', { 'class': 'supervisors' }, [h('legend', { text: T.supervisors })]);
    state.groups.forEach(function (g) {
      var cb = h('input', { type: 'checkbox', value: g, on: { change: function () {
        set('supervisor_lanes', Array.prototype.filter.call(sup.querySelectorAll('input:checked'), function () { return true; })
          .map(function (x) { return x.value; }));
      } } });
      cb.checked = (card.supervisor_lanes || []).indexOf(g) >= 0;
      sup.appendChild(h('label', { 'class': 'choice' }, [cb, ' ' + g]));
    });
    panel.appendChild(sup);
  }

  /* ---- wiring ---- */
  eventBus.on('selection.changed', function (e) { renderPanel(e.newSelection[0]); });
  eventBus.on('commandStack.changed', function () {
    if (!state.loaded) return;
    changed();
    var sel = state.selected;
    var active = document.activeElement;
    if (sel && !(active && panel.contains(active) && active.tagName !== 'BUTTON')) renderPanel(registry.get(sel.id) || null);
  });

  fetch(root.dataset.draftUrl, { credentials: 'same-origin' }).then(function (r) { return r.json(); }).then(function (d) {
    state.files = d.files;
    state.lockVersion = d.lock_version;
    state.groups = d.groups || [];
    return modeler.importXML(d.files[BPMN]).then(function () {
      canvas.zoom('fit-viewport');
      state.loaded = true;
      showProblems(d.problems);
      renderPanel(null);
      root.dataset.ready = '1';
    }, function (err) {
      showProblems([{ message: String(err && err.message || err), file: BPMN, element_id: '' }].concat(d.problems || []));
      root.dataset.ready = 'error';
    });
  });

  window.LajurStudio = { modeler: modeler, state: state, save: save, renderPanel: renderPanel };
})();
