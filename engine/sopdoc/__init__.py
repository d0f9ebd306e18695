"""SOP documents in and out (Permenpan RB 35/2012 layout).

Import: a reader per format (`read_text`, `read_html`, `read_docx`, `read_xlsx`) turns the
document into plain cell grids (`model.Grid`); `layout` reads the Permenpan layout from the
grids into one `model.SopDocument` and lists what it could not read for sure; `draft` writes
that document as a draft process folder (`bpmn_writer` makes the BPMN with its diagram).
Export: `deployed` reads a deployed version back into a `SopDocument`; `flowchart` lays out
the symbols and connectors once, and `render_pdf` / `render_docx` print it.
"""
