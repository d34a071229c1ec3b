"""Message templates (Jinja2), Chinese by default, English per recipient or channel.

Every channel renders the same message (``dispatch`` builds it): ``text`` (e-mail text
part, MQTT/webhook summaries), ``markdown`` (WeCom, DingTalk, Feishu) and ``html``
(e-mail). Each alert line says enterprise, meter, rule, value against threshold, since
when, and links to acknowledge and to the Grafana board when configured.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import DictLoader, Environment, StrictUndefined

# ingest_incident alerts name the incident, the ingest client id and the readings'
# probable loss window (from the alert's detail; a taken-over session has none)
_INCIDENT_ZH = (
    "{% set d = a.get('detail') or {} %}{% if a.get('kind') == 'ingest_incident' "
    "and d.get('client_id') %}{{ {'session_lost': '会话丢失', 'session_taken_over': "
    "'会话被接管'}.get(d.get('incident'), d.get('incident')) }}：客户端 {{ d.client_id }}"
    "（代理 {{ d.get('broker') }}）{% if d.get('window_start') or d.get('window_end') %}，"
    "{{ d.get('window_start') | local }} 至 {{ d.get('window_end') | local }} "
    "发布的读数可能丢失{% endif %}，{% endif %}"
)
_INCIDENT_EN = (
    "{% set d = a.get('detail') or {} %}{% if a.get('kind') == 'ingest_incident' "
    "and d.get('client_id') %}{{ d.get('incident') }} of client id {{ d.client_id }} "
    "(broker {{ d.get('broker') }}){% if d.get('window_start') or d.get('window_end') %}, "
    "readings published {{ d.get('window_start') | local }} to "
    "{{ d.get('window_end') | local }} probably lost{% endif %}, {% endif %}"
)
_LINE_ZH = (
    "{% if a.status == 'resolved' %}【已恢复】{% else %}【{{ a.severity_zh }}·{{ a.state_zh }}】"
    "{% endif %}{{ a.enterprise_name or a.enterprise_id or '园区' }}"
    "{% if a.meter_id %} 表计 {{ a.meter_id }}{% endif %}：规则 {{ a.rule }}"
    "{% if a.description %}（{{ a.description }}）{% endif %}，" + _INCIDENT_ZH +
    "当前值 {{ a.value | num }}，阈值 {{ a.threshold | num }}，"
    "{% if a.status == 'resolved' %}于 {{ a.ends_at | local }} 恢复"
    "{% else %}自 {{ a.starts_at | local }} 起{% endif %}"
    "{% if a.acked_by %}，已由 {{ a.acked_by }} 确认{% endif %}"
)
_LINE_EN = (
    "{% if a.status == 'resolved' %}[RESOLVED]{% else %}[{{ a.severity | upper }} "
    "{{ a.state }}]{% endif %} {{ a.enterprise_id or 'park' }}"
    "{% if a.meter_id %} meter {{ a.meter_id }}{% endif %}: rule {{ a.rule }}"
    "{% if a.description %} ({{ a.description }}){% endif %}, " + _INCIDENT_EN +
    "value {{ a.value | num }} against {{ a.threshold | num }}, "
    "{% if a.status == 'resolved' %}resolved {{ a.ends_at | local }}"
    "{% else %}since {{ a.starts_at | local }}{% endif %}"
    "{% if a.acked_by %}, acknowledged by {{ a.acked_by }}{% endif %}"
)

TEMPLATES = {
    "text.zh": (
        "{{ m.title }}\n\n{% for a in m.alerts %}" + _LINE_ZH +
        "\n{% if a.ack_url %}  确认：{{ a.ack_url }}\n{% endif %}{% endfor %}"
        "{% if m.grafana_url %}\n看板：{{ m.grafana_url }}\n{% endif %}"
    ),
    "text.en": (
        "{{ m.title }}\n\n{% for a in m.alerts %}" + _LINE_EN +
        "\n{% if a.ack_url %}  acknowledge: {{ a.ack_url }}\n{% endif %}{% endfor %}"
        "{% if m.grafana_url %}\nBoard: {{ m.grafana_url }}\n{% endif %}"
    ),
    "markdown.zh": (
        "### {{ m.title }}\n{% for a in m.alerts %}- " + _LINE_ZH +
        "{% if a.ack_url %} [确认]({{ a.ack_url }}){% endif %}\n{% endfor %}"
        "{% if m.grafana_url %}\n[打开看板]({{ m.grafana_url }})\n{% endif %}"
        "{% for u in mentions %}<@{{ u }}>{% endfor %}"
    ),
    "markdown.en": (
        "### {{ m.title }}\n{% for a in m.alerts %}- " + _LINE_EN +
        "{% if a.ack_url %} [acknowledge]({{ a.ack_url }}){% endif %}\n{% endfor %}"
        "{% if m.grafana_url %}\n[Open the board]({{ m.grafana_url }})\n{% endif %}"
        "{% for u in mentions %}<@{{ u }}>{% endfor %}"
    ),
    "html.zh": (
        "<html><body><h3>{{ m.title }}</h3><ul>{% for a in m.alerts %}<li>" + _LINE_ZH +
        "{% if a.ack_url %} <a href=\"{{ a.ack_url }}\">确认</a>{% endif %}</li>"
        "{% endfor %}</ul>{% if m.grafana_url %}<p><a href=\"{{ m.grafana_url }}\">打开看板"
        "</a></p>{% endif %}</body></html>"
    ),
    "html.en": (
        "<html><body><h3>{{ m.title }}</h3><ul>{% for a in m.alerts %}<li>" + _LINE_EN +
        "{% if a.ack_url %} <a href=\"{{ a.ack_url }}\">acknowledge</a>{% endif %}</li>"
        "{% endfor %}</ul>{% if m.grafana_url %}<p><a href=\"{{ m.grafana_url }}\">Open the "
        "board</a></p>{% endif %}</body></html>"
    ),
}


def _num(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if abs(value) >= 100:
            return f"{value:,.0f}"
        return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


class Renderer:
    """Renders a message in ``text``, ``markdown`` or ``html`` (local times in ``tz``)."""

    def __init__(self, tz: ZoneInfo) -> None:
        self.tz = tz
        # html escapes, text and markdown do not
        self.env = Environment(loader=DictLoader(TEMPLATES), undefined=StrictUndefined,
                               autoescape=lambda name: bool(name and name.startswith("html")))
        self.env.filters["num"] = _num
        self.env.filters["local"] = self._local

    def _local(self, iso: str | None) -> str:
        if not iso:
            return "-"
        return datetime.fromisoformat(iso).astimezone(self.tz).strftime("%Y-%m-%d %H:%M")

    def render(self, message: dict[str, Any], form: str, *, language: str | None = None,
               mentions: tuple[str, ...] = ()) -> str:
        lang = language or message.get("language") or "zh"
        name = f"{form}.{lang}"
        tpl = self.env.get_template(name)
        grafana = next((a.get("grafana_url") for a in message["alerts"]
                        if a.get("grafana_url")), None)
        return tpl.render(m={**message, "grafana_url": grafana}, mentions=mentions)
