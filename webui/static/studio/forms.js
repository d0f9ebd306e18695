/* The form designer's model: a step's JSON Schema (the file the engine reads) <-> a list of
   fields with label, type, required, help and choices. Properties of a field the designer does
   not know (patterns, lengths, widgets) are kept as they are while its type is unchanged. */
(function () {
  'use strict';
  var HASH = '^[0-9a-f]{64}$';
  var TYPES = ['text', 'long', 'date', 'number', 'choice', 'yesno', 'files', 'url'];

  function typeOf(prop) {
    if (prop['x-lajur-widget'] === 'files') return 'files';
    if (prop['x-lajur-widget'] === 'textarea') return 'long';
    if (prop.type === 'integer' || prop.type === 'number') return 'number';
    if (prop.type === 'string' && Array.isArray(prop.enum)) {
      return (prop.enum.length === 2 && prop.enum.indexOf('YA') >= 0 && prop.enum.indexOf('TIDAK') >= 0) ? 'yesno' : 'choice';
    }
    if (prop.type === 'string' && prop.format === 'date') return 'date';
    if (prop.type === 'string' && prop.format === 'uri') return 'url';
    if (prop.type === 'string' || prop.type === undefined) return 'text';
    return 'other';
  }

  function propFor(type, old) {
    switch (type) {
      case 'text': return { type: 'string', maxLength: 2000 };
      case 'long': return { type: 'string', maxLength: 10000, 'x-lajur-widget': 'textarea' };
      case 'date': return { type: 'string', format: 'date', pattern: '^\\d{4}-\\d{2}-\\d{2}$' };
      case 'number': return { type: 'number' };
      case 'choice': return { type: 'string', enum: (old && old.enum && typeOf(old) === 'choice') ? old.enum : ['Pilihan 1'] };
      case 'yesno': return { type: 'string', enum: ['YA', 'TIDAK'] };
      case 'files': return { type: 'array', items: { type: 'string', pattern: HASH }, uniqueItems: true, 'x-lajur-widget': 'files' };
      case 'url': return { type: 'string', format: 'uri', pattern: '^https?://', maxLength: 2000 };
      default: return old || { type: 'string' };
    }
  }

  function fields(schema) {
    var required = schema.required || [];
    return Object.keys(schema.properties || {}).map(function (name) {
      var prop = schema.properties[name];
      return { name: name, label: prop.title || name, type: typeOf(prop), required: required.indexOf(name) >= 0,
               help: prop.description || '', choices: (prop.enum || []).slice() };
    });
  }

  /* Apply one designer field to the schema (in place), keeping what the designer does not edit. */
  function setField(schema, field, oldName) {
    schema.properties = schema.properties || {};
    var props = schema.properties, old = props[oldName || field.name];
    var prop = (old && typeOf(old) === field.type) ? JSON.parse(JSON.stringify(old)) : propFor(field.type, old);
    prop.title = field.label;
    if (field.help) prop.description = field.help; else delete prop.description;
    if (field.type === 'choice') prop.enum = field.choices.filter(function (c) { return c; });
    if (field.type === 'files') { if (field.required) prop.minItems = Math.max(1, prop.minItems || 1); else delete prop.minItems; }
    if (field.type === 'text' || field.type === 'long') {
      if (field.required) prop.minLength = Math.max(1, prop.minLength || 1); else if (prop.minLength === 1) delete prop.minLength;
    }
    var rebuilt = {};  // keep the order of fields, renaming in place
    var names = Object.keys(props);
    if (names.indexOf(oldName || field.name) < 0) names.push(field.name);
    names.forEach(function (n) {
      if (n === (oldName || field.name)) rebuilt[field.name] = prop; else rebuilt[n] = props[n];
    });
    schema.properties = rebuilt;
    var req = (schema.required || []).filter(function (n) { return n !== (oldName || field.name) && n !== field.name; });
    if (field.required) req.push(field.name);
    schema.required = req;
    return schema;
  }

  function removeField(schema, name) {
    delete (schema.properties || {})[name];
    schema.required = (schema.required || []).filter(function (n) { return n !== name; });
    return schema;
  }

  function emptySchema(title) {
    return { $schema: 'https://json-schema.org/draft/2020-12/schema', title: title || '', type: 'object',
             properties: {}, required: [], additionalProperties: false };
  }

  window.LajurForms = { TYPES: TYPES, typeOf: typeOf, fields: fields, setField: setField,
                        removeField: removeField, emptySchema: emptySchema };
})();
