"""The incidents package's user-visible messages, registered into the one catalogue
(``dutycall/messages.py``) when the package is imported. Element names come from the form's
own labels (``catalog.ELEMENTS``) as keys ``incident.el.<name>``, so an error names the
element in the reader's language."""

from __future__ import annotations

from ..messages import CATALOGUE, EN, ZH
from .catalog import ELEMENTS


def _m(zh: str, en: str) -> dict[str, str]:
    return {ZH: zh, EN: en}


MESSAGES: dict[str, dict[str, str]] = {
    "incident.not_an_element": _m("“{field}”不是报告表中的要素", "\"{field}\" is not an element of the report form"),
    "incident.text": _m("{label}应为文字", "{label} must be text"),
    "incident.too_long": _m("{label}不能超过 {max} 个字符", "{label} must be at most {max} characters"),
    "incident.unsafe": _m("{label}含有不允许的控制字符或无效字符", "{label} contains control or invalid characters"),
    "incident.phone": _m("{label}应为电话号码（数字、空格、+、-、括号）",
                         "{label} must be a phone number (digits, spaces, +, -, parentheses)"),
    "incident.integer": _m("{label}应为整数", "{label} must be a whole number"),
    "incident.number": _m("{label}应为数字", "{label} must be a number"),
    "incident.range": _m("{label}应在 {low} 到 {high} 之间", "{label} must lie between {low} and {high}"),
    "incident.instant": _m("{label}应为日期时间（ISO 8601，例如 2026-12-02T08:30:00+08:00）",
                           "{label} must be a date and time (ISO 8601, e.g. 2026-12-02T08:30:00+08:00)"),
    "incident.future": _m("{label}不能晚于现在", "{label} cannot be in the future"),
    "incident.too_early": _m("{label}不能早于 1990 年", "{label} cannot be before 1990"),
    "incident.category": _m("{label}不是已知的类别（自然灾害、事故灾难、公共卫生事件、社会安全事件）",
                            "{label} is not a known category (natural disaster, accident, public health, "
                            "social security)"),
    "incident.level": _m("{label}不是已知的等级（I、II、III、IV 或未定级）",
                         "{label} is not a known level (I, II, III, IV or unrated)"),
    "incident.subtype": _m("{label}不是已知的事件类型", "{label} is not a known type"),
    "incident.subtype_category": _m("{label}不属于该事件的类别", "{label} does not belong to the incident's category"),
    "incident.coordinates": _m("经度和纬度应同时填写", "Give both latitude and longitude, or neither"),
    "incident.missing": _m("缺少必填项“{label}”", "{label} is required"),
    "incident.learned_before_occurred": _m("获知时间不能早于发生时间", "It cannot be learned before it happened"),
    "incident.report_invalid": _m("报告有 {count} 处需要修改：{first}", "The report has {count} problem(s): {first}"),
    "incident.not_found": _m("没有编号为 {id} 的突发事件，或不在您的管辖范围内", "No incident {id} in your scope"),
    "incident.report_not_found": _m("该事件没有编号为 {id} 的报告", "The incident has no report {id}"),
    "incident.instruction_not_found": _m("没有编号为 {id} 的批示，或不在您的管辖范围内",
                                         "No instruction {id} in your scope"),
    "incident.unit_not_found": _m("单位 {id} 不存在或不在您的管辖范围内", "No unit {id} in your scope"),
    "incident.consoles_no": _m("值班台不能填报或查看突发事件信息，请用值班人员账号登录",
                               "Consoles cannot file or read incident reports; sign in with a duty account"),
    "incident.no_report_right": _m("您的角色不能填报突发事件信息", "Your role cannot file incident reports"),
    "incident.no_verify_right": _m("只有主持人或管理员可以核报", "Only hosts and administrators verify reports"),
    "incident.no_close_right": _m("只有主持人或管理员可以关闭事件", "Only hosts and administrators close incidents"),
    "incident.no_instruct_right": _m("只有领导可以作出批示", "Only leaders write instructions"),
    "incident.no_supervise_right": _m("只有主持人或管理员可以督办",
                                      "Only hosts and administrators issue supervision notices"),
    "incident.ack_own_unit": _m("只有被批示单位本级的人员可以签收和反馈",
                                "Only the addressed unit itself acknowledges and reports back"),
    "incident.stage_closed": _m("事件已关闭，不能再报送", "The incident is closed; no more reports"),
    "incident.stage_final": _m("事件已终报，不能再续报；如有新情况请联系上级",
                               "The final report is in; no more follow-ups"),
    "incident.stage_merged": _m("该事件已并入事件 {id}，请在该事件上报送",
                                "This incident was merged into {id}; report there"),
    "incident.stage_first_report": _m("首次报告请新建事件（初报）", "A first report creates a new incident"),
    "incident.stage_unknown": _m("报告阶段应为续报（followup）或终报（final）",
                                 "The stage must be followup or final"),
    "incident.close_before_final": _m("终报之后才能关闭事件", "An incident is closed after its final report"),
    "incident.channel": _m("报告方式应为电话（phone）或书面（written）", "The channel must be phone or written"),
    "incident.verify_channel": _m("核报渠道应为区级、公安、卫健或现场核实之一",
                                  "The verification channel must be district, police, health or onsite"),
    "incident.note": _m("说明不能超过 {max} 个字符，不含控制字符",
                        "The note must be at most {max} characters, no control characters"),
    "incident.instruction_text": _m("批示内容应为 1 至 {max} 个字符的文字",
                                    "The instruction must be 1 to {max} characters"),
    "incident.instruction_units": _m("请选择至少一个、至多 {max} 个被批示单位", "Address between one and {max} units"),
    "incident.feedback_text": _m("反馈内容应为 1 至 {max} 个字符的文字", "The feedback must be 1 to {max} characters"),
    "incident.notice_outcome": _m("督办事由应为迟报、漏报、错报或其他",
                                  "The reason must be late, missed, wrong or other"),
    "incident.notice_text": _m("督办内容应为 1 至 {max} 个字符的文字", "The notice text must be 1 to {max} characters"),
    "incident.notice_days": _m("办理期限应为 1 至 30 天", "The deadline must be 1 to 30 days"),
    "incident.merge_list": _m("请列出要合并的事件编号（1 至 {max} 个）", "List the incidents to merge (1 to {max})"),
    "incident.merge_scope": _m("事件 {id} 不在目标事件单位的辖区内，不能合并",
                               "Incident {id} is not under the target incident's unit; cannot merge"),
    "incident.merge_self": _m("不能把事件合并到自身或已合并的事件",
                              "An incident cannot be merged into itself or a merged one"),
    "incident.unit_field": _m("unit_id 应为您辖区内的单位编号", "unit_id must be a unit in your scope"),
    "incident.filter": _m("筛选条件“{name}”无效", "The filter \"{name}\" is not valid"),
    "incident.too_many_units": _m("单位过多", "Too many units"),
    "incident.month": _m("月份应为 YYYY-MM，例如 2026-11", "The month must be YYYY-MM, e.g. 2026-11"),
    "incident.month_range": _m("月份超出范围（2000 至 2200 年）", "The month is out of range (years 2000 to 2200)"),
    # live alerting (alerting.py)
    "alert.consoles_only": _m("只有值班室终端接收和确认事件提醒",
                              "Only a duty room's console receives and acknowledges alerts"),
    "alert.not_found": _m("没有编号为 {id} 的提醒", "There is no alert {id}"),
    "alert.no_group_right": _m("您的角色不能管理通知组", "Your role cannot manage notification groups"),
    "alert.group_name": _m("通知组名称应为 1 至 64 个字符", "The group name must be 1 to 64 characters"),
    "alert.group_choices": _m("{field} 只能取：{allowed}", "{field} may only hold: {allowed}"),
    "alert.group_members": _m("成员应为至多 {max} 个（姓名，电话）",
                              "Members must be at most {max} (name, phone) pairs"),
    "alert.group_active": _m("active 应为 true 或 false", "active must be true or false"),
    "alert.group_unit": _m("unit_id 应为您辖区内的单位编号", "unit_id must be a unit in your scope"),
    "alert.group_not_found": _m("没有编号为 {id} 的通知组", "There is no notification group {id}"),
    "alert.template_text": _m("消息模板应为 1 至 {max} 个字符的文字", "The template must be 1 to {max} characters"),
    "alert.template_field": _m("消息模板只能使用这些占位符：{fields}（有误：{bad}）",
                               "The template may only use these placeholders: {fields} (wrong: {bad})"),
    "alert.delivery_status": _m("状态应为 pending、delivered 或 failed", "status must be pending, delivered or failed"),
}
MESSAGES.update({f"incident.el.{e.name}": _m(e.zh, e.en) for e in ELEMENTS})

CATALOGUE.update(MESSAGES)
