"""Extra blueprints the app factory registers, as "module:attribute" import strings.

Other parts of Lajur (dashboard, notifications) append themselves here so that the
factory needs no edit when they are added; the staff app's own blueprints are
registered by the factory directly.
"""

BLUEPRINTS: list[str] = []
BLUEPRINTS.append("webui.dashboard:bp")
BLUEPRINTS.append("webui.notifications:bp")
BLUEPRINTS.append("webui.admin:bp")
BLUEPRINTS.append("webui.health:bp")
BLUEPRINTS.append("webui.api:bp")
BLUEPRINTS.append("webui.tokens:bp")
BLUEPRINTS.append("webui.registers:bp")

BLUEPRINTS.append("webui.status:bp")
BLUEPRINTS.append("webui.instance_list:bp")
BLUEPRINTS.append("webui.pauses:bp")
BLUEPRINTS.append("webui.processes:bp")
BLUEPRINTS.append("webui.incidents:bp")
BLUEPRINTS.append("webui.studio:bp")
BLUEPRINTS.append("webui.webhooks:bp")
