/* The spiffworkflow:properties extension Lajur reads (formJsonSchemaFilename, paraf, reminders),
   as a moddle descriptor so bpmn-js reads, edits and writes it instead of keeping it opaque. */
window.LajurSpiffModdle = {
  name: 'SpiffWorkflow',
  uri: 'http://spiffworkflow.org/bpmn/schema/1.0/core',
  prefix: 'spiffworkflow',
  xml: { tagAlias: 'lowerCase' },
  associations: [],
  types: [
    { name: 'Properties', superClass: ['Element'],
      properties: [{ name: 'properties', type: 'Property', isMany: true }] },
    { name: 'Property', superClass: ['Element'],
      properties: [{ name: 'name', isAttr: true, type: 'String' }, { name: 'value', isAttr: true, type: 'String' }] }
  ]
};
