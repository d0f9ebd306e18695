"""The browser studio's engine side (issue 11): drafts of process folders, kept on the server.

A draft is the files of a process folder (`process.bpmn`, `sop.json`, `forms/*.schema.json`),
exactly what `lajur deploy` reads. Every save is checked by deploy's own validator
(`check.check_files` runs engine/bpmn.py and engine/deploy.py's lane check on the files), and
publishing deploys the same files through `engine.deploy.deploy_folder`: the studio has no
rules of its own.
"""
